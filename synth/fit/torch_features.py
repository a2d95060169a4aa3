"""The recording's spectral statistics, computed on a render in torch (differentiable).

Same definition as `synth.enroll.features.log_mel_24k`: natural-log mel magnitude,
Hann window, n_fft 1024, hop 256, centred, 80 bands over 0-12 kHz, floor 1e-5.
"""

from __future__ import annotations

import functools
import math

import torch

from synth.enroll import features

# Frames more than this far (natural log, about 35 dB) below the loudest count as silence.
_SILENCE_BELOW_PEAK = 4.0
# Levels are compared on the bands below about 2 kHz, where the voice stays well above a room's noise.
_LEVEL_BANDS = 40


@functools.lru_cache(maxsize=1)
def _basis() -> torch.Tensor:
    return torch.from_numpy(features._mel_basis().copy())


def _mel_magnitude(audio: torch.Tensor) -> torch.Tensor:
    """[80, frames] mel magnitude of [samples] 24 kHz audio."""
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
    return _basis() @ magnitude


def log_mel_24k(audio: torch.Tensor) -> torch.Tensor:
    """[frames, 80] log mel magnitude of [samples] 24 kHz audio."""
    return torch.log(_mel_magnitude(audio).clamp_min(1e-5)).T


def speech_log_mel_stats(
    audio: torch.Tensor, room: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over speech frames of the log mel, per band.

    `room` = (the recording's noise floor, [80] mel magnitude; the recording's mean log mel over its speech,
    [80]): the floor is added to the render in power, at the render's own level, so that the statistics compare
    the voice as it would sound in the recording's room, and a fit need not make noise to match a noisy
    recording.
    """
    mel = _mel_magnitude(audio)
    logmel = torch.log(mel.clamp_min(1e-5)).T
    level = logmel.detach().mean(dim=1)
    speech_frames = level > level.max() - _SILENCE_BELOW_PEAK
    if room is not None:
        floor, recording_mean = room
        render_level = float(logmel.detach()[speech_frames][:, :_LEVEL_BANDS].mean())
        floor = floor * math.exp(render_level - float(recording_mean[:_LEVEL_BANDS].mean()))
        logmel = (0.5 * torch.log((mel**2 + floor[:, None] ** 2).clamp_min(1e-10))).T
    speech = logmel[speech_frames]
    return speech.mean(dim=0), speech.std(dim=0)
