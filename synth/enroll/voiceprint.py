"""The fitting encoder: Resemblyzer's GE2E speaker encoder, run from the weights its wheel ships.

The recipe is Resemblyzer's (16 kHz, 40-band mel power spectrogram with 25 ms windows
and 10 ms hops, 1.6 s partials at 1.3 per second, L2-normed mean of the partial
embeddings). We run the network ourselves because the `resemblyzer` package imports
`webrtcvad`, whose wrapper needs `pkg_resources`, which current setuptools no longer has.
`GE2EEncoder` is a plain torch module, so the voice fit can back-propagate through it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

RATE = 16000
N_MELS = 40
N_FFT = 400
HOP = 160
PARTIAL_FRAMES = 160
PARTIAL_RATE = 1.3
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0


def weights_path() -> Path:
    """The pretrained GE2E weights inside the installed resemblyzer wheel (found without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the voiceprint encoder needs the 'resemblyzer' package: pip install resemblyzer")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise RuntimeError(f"resemblyzer is installed but its weights are missing ({path})")
    return path


def _build_module():  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class GE2EEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, 256)

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            """[batch, frames, 40] mel power -> [batch, 256] unit-norm embeddings."""
            _, (hidden, _) = self.lstm(mels)
            raw = torch.relu(self.linear(hidden[-1]))
            return raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-8)

    module = GE2EEncoder()
    state = torch.load(weights_path(), map_location="cpu", weights_only=False)["model_state"]
    module.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in {"lstm", "linear"}})
    module.eval()
    return module


@functools.cache
def encoder_module():  # type: ignore[no-untyped-def]
    """The GE2E network, loaded once per process."""
    return _build_module()


def mel_frames(pcm16k: np.ndarray) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=pcm16k, sr=RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    return mel.astype(np.float32).T


def normalise_level(pcm16k: np.ndarray) -> np.ndarray:
    """Raise quiet audio to -30 dBFS RMS (never lower it), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(pcm16k, dtype=np.float64)))) if pcm16k.size else 0.0
    if rms <= 1e-9:
        return pcm16k
    gain_db = TARGET_DBFS - 20.0 * np.log10(rms)
    return pcm16k if gain_db < 0 else (pcm16k * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def _partial_starts(n_samples: int) -> list[int]:
    """Frame offsets of the 1.6 s partials covering the utterance (the last kept if >= 75 % full)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(round(RATE / PARTIAL_RATE / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * HOP
    coverage = (n_samples - last) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def partial_embeddings(speech16k: np.ndarray) -> np.ndarray:
    """[n_partials, 256] unit-norm embeddings of 1.6 s partials of (already speech-only) audio."""
    import torch

    wav = normalise_level(speech16k.astype(np.float32))
    starts = _partial_starts(wav.size)
    needed = (starts[-1] + PARTIAL_FRAMES) * HOP
    if needed > wav.size:
        wav = np.pad(wav, (0, needed - wav.size))
    mel = mel_frames(wav)
    batch = np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])
    with torch.no_grad():
        return encoder_module()(torch.from_numpy(batch)).numpy()


def embed(speech16k: np.ndarray) -> np.ndarray:
    """256-d unit-norm voiceprint of speech-only 16 kHz audio."""
    return unit(partial_embeddings(speech16k).mean(axis=0))


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)
