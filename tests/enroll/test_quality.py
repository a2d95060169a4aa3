"""The quality gate on real recordings and on bad recordings built from them."""

from __future__ import annotations

import numpy as np
import pytest

from synth.enroll import quality
from tests.enroll.conftest import RATE, VOICES, load_voice, two_speakers, white_noise

LONG_ENOUGH = sorted(p.name for p in VOICES.glob("*_enroll.wav") if len(load_voice(p.name)) >= 10 * RATE)


def assess(pcm: np.ndarray) -> quality.QualityReport:
    report, _ = quality.assess(pcm.astype(np.float32))
    return report


def test_every_long_enough_enrollment_file_is_found() -> None:
    # The shared set has 7 recordings of at least 10 s; if it shrinks, this suite tests less.
    assert len(LONG_ENOUGH) >= 7


@pytest.mark.parametrize("name", LONG_ENOUGH)
def test_accepts_real_enrollment_recordings(name: str) -> None:
    report = assess(load_voice(name))
    assert report.verdict == "ok", report.advice
    assert report.advice == ()
    assert report.speech_s >= 10
    assert report.clipping_ratio == 0
    assert report.speaker_agreement is not None and report.speaker_agreement > 0.78


def test_refuses_silence() -> None:
    report = assess(np.zeros(20 * RATE, dtype=np.float32))
    assert report.verdict == "rejected"
    assert report.speech_s == 0
    assert quality.ADVICE_NO_SOUND in report.advice
    assert any("more seconds" in a for a in report.advice)


def test_refuses_white_noise() -> None:
    report = assess(white_noise())
    assert report.verdict == "rejected"
    assert report.speech_s < 1
    assert quality.ADVICE_NO_SPEECH in report.advice
    assert quality.ADVICE_QUIETER in report.advice


def test_refuses_a_clipped_copy() -> None:
    report = assess(np.clip(load_voice("en_1688_enroll.wav") * 8.0, -1.0, 1.0))
    assert report.verdict == "rejected"
    assert report.clipping_ratio > 0.05
    assert quality.ADVICE_CLIPPING in report.advice


def test_refuses_a_three_second_clip_saying_how_much_longer() -> None:
    report = assess(load_voice("en_1688_enroll.wav")[: 3 * RATE])
    assert report.verdict == "rejected"
    assert report.duration_s == pytest.approx(3.0, abs=0.01)
    assert quality.advice_speak_longer(7) in report.advice  # 10 s is the minimum


def test_refuses_a_mix_of_two_speakers() -> None:
    report = assess(two_speakers("en_1688_enroll.wav", "en_1998_enroll.wav"))
    assert report.verdict == "rejected"
    assert report.speaker_agreement is not None and report.speaker_agreement < 0.78
    assert quality.ADVICE_ONE_SPEAKER in report.advice


def test_refuses_a_mix_across_languages() -> None:
    report = assess(two_speakers("en_533_enroll.wav", "zh_THCHS30-D4_enroll.wav"))
    assert quality.ADVICE_ONE_SPEAKER in report.advice


def test_refuses_a_far_away_speaker() -> None:
    report = assess(load_voice("en_3005_enroll.wav") * 0.03)
    assert report.verdict == "rejected"
    assert report.level_dbfs < -40
    assert quality.ADVICE_CLOSER in report.advice


def test_refuses_speech_in_loud_noise() -> None:
    speech = load_voice("en_533_enroll.wav")
    report = assess(speech + white_noise(len(speech) / RATE, level=0.08, seed=3)[: len(speech)])
    assert report.verdict == "rejected"
    assert quality.ADVICE_QUIETER in report.advice


def test_report_serialises_with_the_protocol_fields() -> None:
    report = assess(load_voice("en_3331_enroll.wav"))
    data = report.to_dict()
    for key in ("duration_s", "speech_s", "snr_db", "clipping_ratio", "advice", "verdict"):
        assert key in data
    assert data["advice"] == [] and data["verdict"] == "ok"
    assert quality.QualityReport.from_dict(data).verdict == "ok"
