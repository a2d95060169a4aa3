"""The noise suppressor after fitted voices: it removes noise, keeps speech in place, and streams seamlessly."""

from __future__ import annotations

import numpy as np
import pytest

from synth import output_denoise
from synth.engines.base import ClauseRequest, Voice
from synth.engines.kokoro import KokoroEngine
from synth.enroll.contract import FittedStyle
from tests.enroll.conftest import voice_path

RATE = output_denoise.RATE


def recording(seconds: float = 3.0) -> np.ndarray:
    import soundfile
    import soxr

    audio, rate = soundfile.read(str(voice_path("en_1688_probe.wav")), dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)[: int(seconds * RATE)]


def rms_db(audio: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-20))


def lag_of(output: np.ndarray, reference: np.ndarray) -> int:
    """Samples by which `output` lags `reference` (cross-correlation peak)."""
    correlation = np.correlate(output, reference, "full")
    return int(np.argmax(correlation)) - (len(reference) - 1)


def test_speech_comes_out_in_place_and_as_long() -> None:
    speech = recording()
    cleaned = output_denoise.denoise(speech)
    assert cleaned.shape == speech.shape and cleaned.dtype == np.float32
    middle = slice(RATE, 2 * RATE)
    assert lag_of(cleaned[middle], speech[middle]) == 0
    assert abs(rms_db(cleaned) - rms_db(speech)) < 3.0  # the speech itself is kept


def test_noise_around_the_speech_is_suppressed() -> None:
    rng = np.random.default_rng(3)
    speech = recording()
    hiss = (0.01 * rng.standard_normal(speech.size + 2 * RATE)).astype(np.float32)  # about -40 dBFS
    noisy = hiss.copy()
    noisy[RATE : RATE + speech.size] += speech
    cleaned = output_denoise.denoise(noisy)
    # The last second is hiss alone: at least 15 dB quieter after the suppressor (measured: it falls silent).
    tail = slice(-RATE + 2400, None)  # past the last word's decay
    assert rms_db(cleaned[tail]) < rms_db(noisy[tail]) - 15.0
    # and the speech between stays within 3 dB of its level
    voiced = slice(RATE, RATE + speech.size)
    assert abs(rms_db(cleaned[voiced]) - rms_db(noisy[voiced])) < 3.0


def test_pieces_through_one_denoiser_join_as_the_whole() -> None:
    speech = recording()
    cuts = [0, 7001, 7003, 30000, 50000, speech.size]
    pieces = [speech[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    streamed = list(output_denoise.denoised(iter(pieces)))
    joined = np.concatenate(streamed)
    assert joined.shape == speech.shape
    np.testing.assert_allclose(joined, output_denoise.denoise(speech), atol=1e-6)
    assert len(streamed[0]) > 0  # the first piece is answered at once, not held for the whole clause


def test_half_suppressed_is_half_of_each_in_place() -> None:
    speech = recording()
    half = output_denoise.denoise(speech, 0.5)
    np.testing.assert_allclose(half, 0.5 * output_denoise.denoise(speech) + 0.5 * speech, atol=1e-6)
    cuts = [0, 5000, 5001, 40000, speech.size]
    pieces = (speech[a:b] for a, b in zip(cuts, cuts[1:], strict=False))
    streamed = np.concatenate(list(output_denoise.denoised(pieces, 0.5)))
    np.testing.assert_allclose(streamed, half, atol=1e-6)
    np.testing.assert_array_equal(output_denoise.denoise(speech, 0.0), speech)
    with pytest.raises(ValueError):
        output_denoise.OutputDenoiser(1.5)


def test_any_share_of_the_fit_keeps_its_suppressor_and_none_of_it_drops_it() -> None:
    start = np.zeros((510, 1, 256), np.float32)
    fitted = FittedStyle(np.ones((510, 1, 256), np.float32), np.ones((58, 128), np.float32), denoise=0.5)
    assert fitted.share_of_the_way(start, 0.5, 0.0).denoise == 0.5
    assert fitted.share_of_the_way(start, 0.0, 0.5).denoise == 0.5
    assert fitted.share_of_the_way(start, 0.0, 0.0).denoise == 0.0  # the start pack, served as it is


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    engine = KokoroEngine(threads=1)
    engine.warm_up()
    return engine


def test_the_engine_suppresses_a_voice_that_asks_whole_and_streamed(engine: KokoroEngine) -> None:
    stock = engine.stock_voice("jf_alpha")
    quiet = Voice(id="quiet", engine="kokoro", params=stock.params, owner="quiet", denoise=1.0)
    text = "Sorry, my connection dropped for a second."
    plain = engine.render_clause(ClauseRequest(text, "en", stock))
    whole = engine.render_clause(ClauseRequest(text, "en", quiet))
    np.testing.assert_allclose(whole, output_denoise.denoise(plain), atol=1e-5)
    assert not np.allclose(whole, plain, atol=1e-3)
    streamed = list(engine.stream_clause(ClauseRequest(text, "en", quiet)))
    assert len(streamed) >= 2  # still streamed: first words, then the rest (and the suppressor's tail)
    joined = np.concatenate(streamed)
    assert abs(joined.size - whole.size) < 0.05 * whole.size
