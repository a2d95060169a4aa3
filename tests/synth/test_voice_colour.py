"""A voice's colour: the curve measured between two spectra, the filter that follows it, pieces joined without seams."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import freqz

from synth import voice_colour
from synth.engines.base import ClauseRequest, Voice
from synth.engines.kokoro import KokoroEngine

RATE = voice_colour.RATE
TO_DB = 20.0 / np.log(10.0)


def noise(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.05).astype(np.float32)


def bump(centre_hz: float, width_hz: float, db: float) -> np.ndarray:
    """A smooth log-gain bump over the mel bands."""
    hz = voice_colour.band_centres_hz()
    return db / TO_DB * np.exp(-0.5 * ((hz - centre_hz) / width_hz) ** 2)


def response_db(taps: np.ndarray, hz: np.ndarray) -> np.ndarray:
    _, h = freqz(taps, worN=hz, fs=RATE)
    return np.asarray(20.0 * np.log10(np.abs(h)))


def test_equal_spectra_need_no_colour() -> None:
    render = voice_colour.speech_logmel_mean(noise())
    np.testing.assert_allclose(voice_colour.colour_gains(render + 0.7, render), 0.0, atol=1e-9)  # level is not colour


def test_the_curve_between_two_spectra_is_recovered_and_the_filter_follows_it() -> None:
    render = voice_colour.speech_logmel_mean(noise())
    wanted = bump(1500.0, 400.0, 5.0) - bump(600.0, 150.0, 4.0)  # inside the band and the limits
    gains = voice_colour.colour_gains(render + wanted, render)
    hz = voice_colour.band_centres_hz()
    inside = (hz >= voice_colour.LOW_HZ) & (hz <= voice_colour.TOP_HZ)
    # Up to the level removed, and the light smoothing.
    shape = wanted - wanted[inside].mean()
    assert np.max(np.abs((gains - shape)[inside])) * TO_DB < 1.0
    taps = voice_colour.design_filter(gains)
    assert taps.shape == (voice_colour.TAPS,) and taps.dtype == np.float32
    np.testing.assert_allclose(taps, taps[::-1], atol=1e-7)  # linear phase
    probe = (hz > 200) & (hz < 7000)  # the filter also follows the curve held flat beyond the band's edges
    assert np.max(np.abs(response_db(taps, hz[probe]) - gains[probe] * TO_DB)) < 1.5


def test_filtered_audio_takes_the_recordings_long_term_spectrum() -> None:
    source = noise(seed=1)
    render = voice_colour.speech_logmel_mean(source)
    recording = render + bump(2500.0, 600.0, 9.0) - bump(600.0, 200.0, 7.0)
    taps = voice_colour.design_filter(voice_colour.colour_gains(recording, render))
    coloured = voice_colour.speech_logmel_mean(voice_colour.apply(taps, source))
    hz = voice_colour.band_centres_hz()
    inside = (hz >= 200) & (hz <= 7000)

    def distance(mean: np.ndarray) -> float:
        diff = (recording - mean)[inside]
        return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)) * TO_DB)

    assert distance(render) > 3.5
    assert distance(coloured) < 1.0


@pytest.mark.parametrize(
    "limits",
    [
        {},  # what synthesis uses
        {"low_hz": 100.0, "top_hz": 7500.0, "max_boost_db": 12.0, "max_cut_db": 12.0},  # wider, for experiments
    ],
)
def test_bands_outside_the_voice_are_held_and_no_band_moves_beyond_the_limits(limits: dict[str, float]) -> None:
    render = np.zeros(voice_colour.band_centres_hz().size)
    hz = voice_colour.band_centres_hz()
    recording = np.where(hz > 8000, -9.0, 0.0)  # an 8 kHz band limit: the recording's, not the voice's
    recording = recording + np.where(hz < 60, 3.0, 0.0)  # hum
    recording = recording + bump(3000.0, 300.0, 40.0)  # far beyond what a voice's colour may ask
    recording = recording - bump(1000.0, 200.0, 40.0)
    gains_db = voice_colour.colour_gains(recording, render, **limits) * TO_DB  # type: ignore[arg-type]
    top = np.flatnonzero(hz <= limits.get("top_hz", voice_colour.TOP_HZ))[-1]
    low = np.flatnonzero(hz >= limits.get("low_hz", voice_colour.LOW_HZ))[0]
    # Held flat beyond the edge bands (the edge band itself is smoothed with its neighbour inside).
    np.testing.assert_allclose(gains_db[top + 1 :], gains_db[top + 1])
    np.testing.assert_allclose(gains_db[:low], gains_db[low - 1], atol=0.01)
    boost = limits.get("max_boost_db", voice_colour.MAX_BOOST_DB)
    cut = limits.get("max_cut_db", voice_colour.MAX_CUT_DB)
    assert gains_db.max() == pytest.approx(boost) and gains_db.min() == pytest.approx(-cut)


def test_the_level_is_kept() -> None:
    source = noise(seed=2)
    render = voice_colour.speech_logmel_mean(source)
    gains = voice_colour.loudness_neutral(bump(300.0, 150.0, 10.0), render)
    coloured = voice_colour.apply(voice_colour.design_filter(gains), source)
    ratio_db = 10.0 * np.log10(np.mean(coloured**2) / np.mean(source**2))
    assert abs(ratio_db) < 1.0


def test_pieces_filtered_in_turn_join_as_the_whole() -> None:
    source = noise(1.0, seed=3)
    taps = voice_colour.design_filter(bump(1000.0, 300.0, 6.0))
    colour = voice_colour.ColourFilter(taps)
    pieces = [colour(part) for part in np.split(source, [700, 701, 5000, 5000])]
    np.testing.assert_allclose(np.concatenate(pieces), voice_colour.apply(taps, source), atol=1e-6)


def test_bad_colours_are_refused() -> None:
    with pytest.raises(ValueError):
        voice_colour.check_taps(np.zeros(10))
    with pytest.raises(ValueError):
        voice_colour.check_taps(np.full(voice_colour.TAPS, np.nan))
    with pytest.raises(ValueError):
        voice_colour.colour_gains(np.zeros(80), np.zeros(40))
    with pytest.raises(ValueError):
        voice_colour.design_filter(np.full(80, np.inf))


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    engine = KokoroEngine(threads=1)
    engine.warm_up()
    return engine


def high_band_share(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    hz = np.fft.rfftfreq(audio.size, 1.0 / RATE)
    return float(spectrum[hz > 3000].sum() / spectrum.sum())


def test_the_engine_speaks_with_the_voices_colour_whole_and_streamed(engine: KokoroEngine) -> None:
    stock = engine.stock_voice("jf_alpha")
    dark_taps = voice_colour.design_filter(np.where(voice_colour.band_centres_hz() > 2500, -10.0 / TO_DB, 0.0))
    dark = Voice(id="dark", engine="kokoro", params=stock.params, owner="dark", colour=dark_taps)
    text = "Sorry, my connection dropped for a second."
    plain = engine.render_clause(ClauseRequest(text, "en", stock))
    whole = engine.render_clause(ClauseRequest(text, "en", dark))
    streamed = list(engine.stream_clause(ClauseRequest(text, "en", dark)))
    assert len(streamed) == 2  # still streamed: first words, then the rest
    joined = np.concatenate(streamed)
    assert high_band_share(whole) < 0.3 * high_band_share(plain)
    assert high_band_share(joined) < 0.3 * high_band_share(plain)
    assert abs(joined.size - whole.size) < 0.05 * whole.size
