"""The colour of a fitted voice, measured on real renders against a real recording."""

from __future__ import annotations

import numpy as np
import pytest

from synth import voice_colour
from synth.enroll.contract import FitTarget
from synth.fit.colour_fit import COLOUR_SENTENCES, SHARES, MeasuredColour, keep_clean_share, measure_colour
from synth.fit.style_fit import TRAINING_SENTENCES


def spectral_distance_db(target: FitTarget, audio: np.ndarray) -> float:
    """RMS difference in dB of long-term log-mel shape (level removed) between the recording and `audio`."""
    hz = voice_colour.band_centres_hz()
    inside = (hz >= voice_colour.LOW_HZ) & (hz <= voice_colour.TOP_HZ)
    diff = (np.asarray(target.logmel_mean, np.float64) - voice_colour.speech_logmel_mean(audio))[inside]
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)) * 20.0 / np.log(10.0))


@pytest.fixture(scope="module")
def measured(english_target: FitTarget, start_pack: np.ndarray) -> MeasuredColour:
    """The curve from a Japanese stock voice's renders to a real English recording."""
    return measure_colour(english_target, start_pack)


def test_the_colour_is_measured_on_the_first_three_training_sentences_whatever_the_style_fit_uses(
    english_target: FitTarget, start_pack: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synth.enroll import render

    spoken: list[tuple[str, str]] = []

    def render_text(pack: np.ndarray, text: str, lang: str, *args: object, **kwargs: object) -> np.ndarray:
        spoken.append((text, lang))
        return np.zeros(2400, np.float32)

    monkeypatch.setattr(render, "render_text", render_text)
    measure_colour(english_target, start_pack)
    assert COLOUR_SENTENCES == 3
    assert spoken == [(text, "en") for text in TRAINING_SENTENCES["en"][:3]]


def test_the_colour_brings_the_renders_spectrum_to_the_recordings(
    english_target: FitTarget, measured: MeasuredColour
) -> None:
    before = spectral_distance_db(english_target, measured.renders)
    after = spectral_distance_db(english_target, voice_colour.apply(measured.taps(), measured.renders))
    assert before > 2.0  # a Japanese stock voice is not this English reader
    assert after < 0.6 * before
    assert measured.taps(0.0) is None


def test_the_whole_curve_is_kept_when_it_sounds_clean_and_none_when_every_share_sounds_worse(
    measured: MeasuredColour,
) -> None:
    kept = keep_clean_share(measured, quality=lambda audio: 1.0)
    assert kept.guard is not None and kept.guard.scale == 1.0 and kept.taps is not None
    assert kept.taps.shape == (voice_colour.TAPS,)
    assert np.abs(kept.gains_db).max() > 3.0
    assert kept.gains_db.max() <= voice_colour.MAX_BOOST_DB and kept.gains_db.min() >= -voice_colour.MAX_CUT_DB

    # Any change to the renders is scored worse than the renders themselves: nothing is kept.
    first: list[np.ndarray] = []

    def dislikes_change(audio: np.ndarray) -> float:
        first.append(first[0] if first else audio.copy())  # the guard scores the uncoloured renders first
        return 0.0 if np.array_equal(audio, first[0]) else -1.0

    refused = keep_clean_share(measured, quality=dislikes_change)
    assert refused.guard is not None and [share for share, _ in refused.guard.tried] == list(SHARES)
    assert refused.taps is None and refused.guard.scale == 0.0 and not refused.gains_db.any()
