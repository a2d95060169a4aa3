"""DNSMOS's overall score of a render, differentiable, so the fit can keep a voice clean while it moves it.

The same P.835 network the quality gate and the guard run in ONNX Runtime (synth.enroll.dnsmos),
executed by the fit's ONNX-to-PyTorch executor (its output matches ONNX Runtime's to 1e-6),
after a polyphase resampler from the engine's 24 kHz to DNSMOS's 16 kHz. A render shorter
than the network's 9 s window is repeated to fill it, as the scorer does.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from synth.enroll import dnsmos
from synth.fit.onnx_torch import OnnxTorchGraph

_TAPS = 95  # the 24 -> 16 kHz low-pass: a windowed sinc at 48 kHz, 95 taps (about 1 ms each side)
_OVRL_OUTPUT = 2  # the network's outputs: SIG, BAK, OVRL (raw, before the P.835 polynomial)


@functools.lru_cache(maxsize=1)
def _graph() -> OnnxTorchGraph:
    import onnx

    return OnnxTorchGraph(onnx.load(str(dnsmos.model_path())))


@functools.lru_cache(maxsize=1)
def _low_pass() -> torch.Tensor:
    # Up by 2 (48 kHz), cut below the 8 kHz Nyquist of the output, down by 3; gain 2 makes up for the zeros.
    k = torch.arange(_TAPS, dtype=torch.float32) - (_TAPS - 1) / 2
    cutoff = 7600.0 / 48000.0
    h = 2 * cutoff * torch.sinc(2 * cutoff * k) * torch.hann_window(_TAPS + 2, periodic=False)[1:-1]
    return (2.0 * h / h.sum()).reshape(1, 1, -1)


def to_16k(audio_24k: torch.Tensor) -> torch.Tensor:
    """24 kHz mono [samples] to 16 kHz, differentiably."""
    x = audio_24k.reshape(1, 1, -1)
    up = torch.zeros(1, 1, 2 * x.shape[-1], dtype=x.dtype)
    up[..., ::2] = x
    return F.conv1d(up, _low_pass(), padding=_TAPS // 2, stride=3).reshape(-1)


def overall(audio_24k: torch.Tensor) -> torch.Tensor:
    """DNSMOS OVRL (1..5) of one 9 s window of the render (repeated to fill it), with a gradient."""
    x = to_16k(audio_24k)
    if x.numel() == 0:
        raise ValueError("no audio to score")
    x = x.repeat(-(-dnsmos.WINDOW // x.numel()))[: dnsmos.WINDOW]
    raw = next(iter(_graph().run({"input_1": x.reshape(1, -1)}).values())).reshape(-1)[_OVRL_OUTPUT]
    a, b, c = (float(v) for v in dnsmos.OVRL_SCALE.coeffs)
    return a * raw**2 + b * raw + c
