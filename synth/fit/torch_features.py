"""The recording's spectral statistics, computed on a render in torch (differentiable).

Same definition as `synth.enroll.features.log_mel_24k`: natural-log mel magnitude,
Hann window, n_fft 1024, hop 256, centred, 80 bands over 0-12 kHz, floor 1e-5.
"""

from __future__ import annotations

import functools

import torch

from synth.enroll import features

# Frames more than this far (natural log, about 35 dB) below the loudest count as silence.
_SILENCE_BELOW_PEAK = 4.0


@functools.lru_cache(maxsize=1)
def _basis() -> torch.Tensor:
    return torch.from_numpy(features._mel_basis().copy())


def log_mel_24k(audio: torch.Tensor) -> torch.Tensor:
    """[frames, 80] log mel magnitude of [samples] 24 kHz audio."""
    spec = torch.stft(
        audio,
        n_fft=features.N_FFT,
        hop_length=features.HOP,
        window=torch.hann_window(features.N_FFT),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    magnitude = torch.sqrt((spec.real**2 + spec.imag**2).clamp_min(1e-12))
    return torch.log((_basis() @ magnitude).clamp_min(1e-5)).T


def speech_log_mel_stats(audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over speech frames of the log mel, per band."""
    logmel = log_mel_24k(audio)
    level = logmel.detach().mean(dim=1)
    speech = logmel[level > level.max() - _SILENCE_BELOW_PEAK]
    return speech.mean(dim=0), speech.std(dim=0)
