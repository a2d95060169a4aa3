"""Resemblyzer's speaker embedding as a differentiable function of 24 kHz audio.

Resemblyzer itself resamples to 16 kHz and takes a librosa mel spectrogram (power,
40 bands, 25 ms Hann window, 10 ms hop) in numpy. Here the same filterbank is
applied to a 24 kHz STFT with the same window and hop in milliseconds: the FFT bins
then sit at the same 40 Hz spacing and the bands above 8 kHz are never used, so no
resampling is needed. Partial windows, volume normalisation and averaging follow
`VoiceEncoder.embed_utterance`. The network is rebuilt here from the package's
weights file because importing `resemblyzer.VoiceEncoder` pulls in webrtcvad, which
needs the removed `pkg_resources`.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import librosa
import numpy as np
import torch

# Resemblyzer's hparams.py (importing it runs the package __init__, see above).
_SR_16K = 16000
_MEL_WINDOW_MS = 25
_MEL_STEP_MS = 10
_N_MELS = 40
_HIDDEN = 256
_LAYERS = 3
_PARTIAL = 160  # frames per partial utterance (1.6 s)
_TARGET_DBFS = -30

SAMPLE_RATE = 24000
_WIN = SAMPLE_RATE * _MEL_WINDOW_MS // 1000  # 600
_HOP = SAMPLE_RATE * _MEL_STEP_MS // 1000  # 240
_N_FFT_16K = _SR_16K * _MEL_WINDOW_MS // 1000  # 400
# |STFT|^2 grows with the square of the window length: bring it back to 16 kHz units.
_POWER_SCALE = (_N_FFT_16K / _WIN) ** 2
_RATE = 1.3
_MIN_COVERAGE = 0.75
_TARGET_RMS = 10 ** (_TARGET_DBFS / 20)


class _Encoder(torch.nn.Module):
    """Resemblyzer's network: 3-layer LSTM, linear, ReLU, L2 norm of the last state."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(_N_MELS, _HIDDEN, _LAYERS, batch_first=True)
        self.linear = torch.nn.Linear(_HIDDEN, _HIDDEN)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("resemblyzer is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"


@functools.lru_cache(maxsize=1)
def _encoder() -> _Encoder:
    encoder = _Encoder()
    state = torch.load(_weights_path(), map_location="cpu")["model_state"]
    encoder.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")})
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


@functools.lru_cache(maxsize=1)
def _mel_basis() -> torch.Tensor:
    basis = librosa.filters.mel(sr=_SR_16K, n_fft=_N_FFT_16K, n_mels=_N_MELS)
    # Pad the 16 kHz basis (201 bins up to 8 kHz) with zeros for the 24 kHz bins above 8 kHz.
    padded = np.zeros((basis.shape[0], _WIN // 2 + 1), np.float32)
    padded[:, : basis.shape[1]] = basis
    return torch.from_numpy(padded)


def mel_frames(wav: torch.Tensor) -> torch.Tensor:
    """[T] 24 kHz audio -> [frames, 40] power mel, as Resemblyzer computes it at 16 kHz."""
    spec = torch.stft(
        wav,
        n_fft=_WIN,
        hop_length=_HOP,
        window=torch.hann_window(_WIN),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = (spec.real**2 + spec.imag**2) * _POWER_SCALE
    return (_mel_basis() @ power).T


def _partial_starts(n_frames: int) -> list[int]:
    frame_step = int(np.round((_SR_16K / _RATE) / (_SR_16K * _MEL_STEP_MS // 1000)))
    steps = max(1, n_frames - _PARTIAL + frame_step + 1)
    starts = list(range(0, steps, frame_step))
    coverage = (n_frames - starts[-1]) / _PARTIAL
    if coverage < _MIN_COVERAGE and len(starts) > 1:
        starts = starts[:-1]
    return starts


def embed(wav: torch.Tensor) -> torch.Tensor:
    """Unit-norm 256-d Resemblyzer embedding of [T] float audio at 24 kHz (differentiable)."""
    rms = torch.sqrt((wav.detach() ** 2).mean().clamp_min(1e-12))
    if rms < _TARGET_RMS:  # Resemblyzer only ever raises the volume
        wav = wav * (_TARGET_RMS / rms)
    n_frames = wav.shape[-1] // _HOP + 1
    starts = _partial_starts(n_frames)
    needed = (starts[-1] + _PARTIAL) * _HOP
    if needed > wav.shape[-1]:
        wav = torch.nn.functional.pad(wav, (0, needed - wav.shape[-1]))
    mels = mel_frames(wav)
    partials = torch.stack([mels[s : s + _PARTIAL] for s in starts])
    embeds = _encoder()(partials)
    mean = embeds.mean(dim=0)
    return mean / mean.norm()


def embed_numpy(wav: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return embed(torch.from_numpy(np.asarray(wav, np.float32))).numpy()
