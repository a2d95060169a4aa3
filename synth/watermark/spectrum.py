"""The time-frequency view the watermark network works in: 32 kHz, 2048-point STFT, 10 ms hop.

Magnitudes are taken in dB and scaled so -180 dB maps to 0 and +15 dB to 1, the scale the
network was trained on. Only the lowest 2 kHz (the first 128 bins) carries the mark.
"""

from __future__ import annotations

import torch

SAMPLE_RATE = 32000
N_FFT = 2048
HOP = 320
MARK_BINS = 128  # round(1025 bins * 2 kHz / 16 kHz): the band the mark lives in
_FLOOR_DB = -180.0  # 20 * log10(1e-9), the quietest magnitude the scale distinguishes
_HEADROOM_DB = 15.0
_WINDOW = torch.hann_window(N_FFT)


def stft(signal: torch.Tensor) -> torch.Tensor:
    """Complex spectrum [1025, frames] of a 1-D 32 kHz signal (centred frames, reflected edges)."""
    return torch.stft(
        signal,
        N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window=_WINDOW,
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )


def istft(spectrum: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(
        spectrum,
        N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window=_WINDOW,
        center=True,
        normalized=False,
        onesided=True,
        length=length,
    )


def to_scaled_db(magnitude: torch.Tensor) -> torch.Tensor:
    decibels = 20.0 * torch.log10(magnitude.clamp(min=10.0 ** (_FLOOR_DB / 20.0)))
    return (decibels - _FLOOR_DB) / (_HEADROOM_DB - _FLOOR_DB)


def from_scaled_db(scaled: torch.Tensor) -> torch.Tensor:
    decibels = scaled * (_HEADROOM_DB - _FLOOR_DB) + _FLOOR_DB
    return 10.0 ** (decibels / 20.0).clamp(max=10.0)


def frames_to_seconds(frames: int) -> float:
    return frames * HOP / SAMPLE_RATE
