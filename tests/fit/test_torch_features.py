"""The fit's spectral statistics in torch: in the recording's room, a clean render is heard as if recorded there."""

from __future__ import annotations

import numpy as np
import torch

from synth.enroll import features
from synth.fit.torch_features import speech_log_mel_stats
from tests.enroll.conftest import load_voice


def test_adding_the_rooms_floor_to_a_clean_render_matches_the_render_recorded_in_that_room() -> None:
    clean = load_voice("en_533_enroll.wav")[: 8 * 24000]
    hiss = np.random.default_rng(1).normal(0.0, 0.01, clean.size).astype(np.float32)
    recorded = clean + hiss  # the same speech in a noisy room, at the same level
    floor = features.noise_floor(hiss)
    recording_mean, _ = speech_log_mel_stats(torch.from_numpy(recorded))

    room_mean, room_std = speech_log_mel_stats(torch.from_numpy(clean), (torch.from_numpy(floor), recording_mean))
    plain_mean, plain_std = speech_log_mel_stats(torch.from_numpy(clean))
    noisy_mean, noisy_std = speech_log_mel_stats(torch.from_numpy(recorded))

    def apart(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b)[:68].abs().mean())

    # Without the room the clean render looks far from the noisy recording; with it, within about 2 dB a band
    # (the floor is a low percentile of the noise, a little below its typical level).
    assert apart(plain_mean, noisy_mean) > 0.3
    assert apart(room_mean, noisy_mean) < min(0.25, 0.6 * apart(plain_mean, noisy_mean))
    assert apart(room_std, noisy_std) < 0.5 * apart(plain_std, noisy_std)


def test_the_room_keeps_the_gradient() -> None:
    audio = torch.from_numpy(load_voice("en_533_enroll.wav")[: 2 * 24000]).requires_grad_()
    floor = torch.full((80,), 1e-3)
    mean, std = speech_log_mel_stats(audio, (floor, torch.full((80,), -3.0)))
    (mean.sum() + std.sum()).backward()
    assert audio.grad is not None and torch.isfinite(audio.grad).all() and audio.grad.abs().sum() > 0
