"""Every accepted upload format decodes through the gate; the fit target describes the voice."""

from __future__ import annotations

import numpy as np
import pytest

from synth.enroll import features, quality
from synth.enroll.contract import FitTarget
from synth.enroll.quality import GateLimits
from synth.enroll.tasks import analyse_recording, nearest_stock, stock_prints
from tests.enroll.conftest import encoded_bytes, load_voice, voice_path


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [("ogg", "libopus", 48000), ("webm", "libopus", 48000), ("mp3", "libmp3lame", 44100)],
)
def test_compressed_uploads_pass_the_gate(container: str, codec: str, rate: int) -> None:
    # The first 14 s of the recording: above the gate's minimum, and the analysis costs what the audio lasts.
    data = encoded_bytes(load_voice("en_3331_enroll.wav")[: 14 * 24000], container, codec, rate)
    result = analyse_recording(data, GateLimits(), "en")
    assert result.accepted, result.quality["advice"]
    assert result.quality["duration_s"] == pytest.approx(14.0, abs=0.2)
    assert result.target is not None and result.judge_print is not None
    assert result.start_stock in stock_prints()


def test_wav_analysis_gives_a_complete_fit_target() -> None:
    result = analyse_recording(voice_path("en_533_enroll.wav").read_bytes(), GateLimits(), "en")
    assert result.accepted and result.target is not None and result.judge_print is not None
    target = FitTarget.from_arrays(result.target, "en")
    assert target.voiceprint.shape == (256,) and np.linalg.norm(target.voiceprint) == pytest.approx(1.0, abs=1e-4)
    assert target.segment_voiceprints.ndim == 2 and target.segment_voiceprints.shape[1] == 256
    assert target.segment_voiceprints.shape[0] >= 2
    assert target.logmel_mean.shape == (80,) and target.logmel_std.shape == (80,)
    assert np.all(np.isfinite(target.logmel_mean)) and np.all(target.logmel_std > 0)
    assert 140 < target.f0_median_hz < 300  # a woman's speaking voice
    assert target.f0_p10_hz < target.f0_median_hz < target.f0_p90_hz
    assert np.linalg.norm(result.judge_print) == pytest.approx(1.0, abs=1e-4)
    assert nearest_stock(target.voiceprint) == result.start_stock
    assert target.noise_mel is None  # only the experimental spectrum_in_room reads it: enrollment keeps none


def test_a_target_with_its_noise_floor_round_trips_and_one_without_still_loads() -> None:
    _, analysis = quality.assess(load_voice("en_533_enroll.wav"))
    target = features.extract(analysis, "en", with_noise_floor=True)
    assert target.noise_mel is not None and target.noise_mel.shape == (80,)
    assert np.all(target.noise_mel < np.exp(target.logmel_mean))  # the floor lies below the speech, band by band
    restored = FitTarget.from_arrays(target.arrays(), "en")
    assert restored.noise_mel is not None
    np.testing.assert_array_equal(FitTarget.from_arrays(restored.arrays(), "en").noise_mel, restored.noise_mel)
    older = {name: array for name, array in target.arrays().items() if name != "noise_mel"}
    assert FitTarget.from_arrays(older, "en").noise_mel is None


def test_the_noise_floor_hears_the_rooms_hiss_and_not_the_voice() -> None:
    voice = load_voice("en_533_enroll.wav")
    hiss = np.random.default_rng(0).normal(0.0, 0.02, voice.size).astype(np.float32)  # about -34 dBFS
    quiet, noisy = features.noise_floor(voice), features.noise_floor(voice + hiss)
    hiss_level = np.median(np.exp(features.log_mel_24k(hiss)), axis=0)
    upper = slice(40, 68)  # 2-7.5 kHz, where this reader's pauses are near silent and the hiss dominates them
    assert np.all(noisy[upper] > 3 * quiet[upper])
    assert np.all(np.abs(np.log(noisy[upper] / hiss_level[upper])) < 0.5)  # within about 4 dB of the hiss itself


def test_pitch_statistics_separate_a_man_from_a_woman() -> None:
    def median_f0(name: str) -> float:
        _, analysis = quality.assess(load_voice(name))
        return features.f0_stats(features.speech_24k(analysis))[0]

    man, woman = median_f0("en_3005_enroll.wav"), median_f0("en_533_enroll.wav")
    assert 70 < man < 140 and 180 < woman < 300


def test_pitch_statistics_hear_the_voice_through_a_low_hum() -> None:
    # A vowel-like tone gliding 180 -> 240 Hz (median 210), under a 45 Hz hum as loud as the voice's fundamental
    # and some hiss: the hum must not hide the voicing nor pull the pitch toward the voice's highest stretch.
    rng = np.random.default_rng(3)
    t = np.arange(6 * features.RATE) / features.RATE
    f0 = 180.0 + 10.0 * t
    phase = 2 * np.pi * np.cumsum(f0) / features.RATE
    voice = sum((0.3 / k) * np.sin(k * phase) for k in range(1, 15))
    hum = 0.3 * np.sin(2 * np.pi * 45.0 * t)
    pcm = (voice + hum + rng.normal(0.0, 0.01, t.size)).astype(np.float32)
    median, p10, p90 = features.f0_stats(pcm)
    assert abs(median / 210.0 - 1.0) < 0.05
    assert 175 < p10 < median < p90 < 245


def test_pitch_statistics_of_a_recording_with_rumble_follow_its_harmonics() -> None:
    # zh_THCHS30-D4 has a hum below 80 Hz; its spectrogram's harmonics put its pitch between about 170 and 300 Hz.
    _, analysis = quality.assess(load_voice("zh_THCHS30-D4_enroll.wav"))
    median, _p10, _p90 = features.f0_stats(features.speech_24k(analysis))
    assert 180 < median < 240


def test_log_mel_layout_is_the_contract() -> None:
    second = np.sin(2 * np.pi * 440 * np.arange(24000) / 24000).astype(np.float32)
    mel = features.log_mel_24k(second)
    assert mel.shape == (1 + 24000 // 256, 80)
    assert int(np.argmax(mel.mean(axis=0))) < 20  # 440 Hz sits in the low bands
