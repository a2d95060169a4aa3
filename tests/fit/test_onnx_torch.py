"""The torch executor of the Kokoro graph against ONNX Runtime on the same int8 model."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from synth.engines.kokoro_layers import LAYER_STYLE_INPUT, add_layer_style_input
from synth.enroll.features import log_mel_24k
from synth.fit import kokoro_torch, resemblyzer_torch
from synth.fit.onnx_torch import OnnxTorchGraph, UnsupportedGraph

# Durations are rounded to whole frames, so a rounding flip changes the length of the
# output; the comparison feeds the runtime's durations to both sides.
DURATIONS = "/encoder/Clip_output_0"
PHONEMES = "ðə wˈɛðɚ ˈɪz lˈʌvli tədˈA."


# A per-layer timbre (synth.engines.kokoro_layers) as large as a fit moves it, the same on both sides.
LAYERS = (np.random.default_rng(3).standard_normal((58, 128)) * 0.15).astype(np.float32)


@pytest.fixture(scope="module")
def runtime_render(start_pack: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    from synth.engines.kokoro_model import model_file

    model = onnx.load(str(model_file()))
    add_layer_style_input(model)  # as served
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(DURATIONS))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    tokens = kokoro_torch.token_ids(PHONEMES)
    style = kokoro_torch.style_row(start_pack, len(tokens)).numpy().reshape(1, 256)
    audio, durations = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": style,
            "speed": np.array([1.0], np.float32),
            LAYER_STYLE_INPUT: LAYERS,
        },
    )
    return tokens, style, audio.reshape(-1), durations


def test_torch_render_matches_the_runtime(runtime_render) -> None:  # type: ignore[no-untyped-def]
    tokens, style, reference, durations = runtime_render
    feeds = {
        "tokens": torch.tensor([[0, *tokens, 0]]),
        "style": torch.from_numpy(style),
        "speed": torch.tensor([1.0]),
        DURATIONS: torch.from_numpy(durations),
        LAYER_STYLE_INPUT: torch.from_numpy(LAYERS),
    }
    with torch.no_grad():
        ours = kokoro_torch.graph().run(feeds)["audio"].numpy().reshape(-1)
    assert ours.shape == reference.shape
    a, b = log_mel_24k(reference), log_mel_24k(ours)
    mel_snr_db = 10 * np.log10(np.sum(a**2) / np.sum((a - b) ** 2))
    assert mel_snr_db > 20.0
    cosine = float(resemblyzer_torch.embed_numpy(reference) @ resemblyzer_torch.embed_numpy(ours))
    assert cosine > 0.98


def test_style_gets_a_finite_gradient_in_both_halves(start_pack: np.ndarray) -> None:
    tokens = kokoro_torch.token_ids(PHONEMES)
    style = kokoro_torch.style_row(start_pack, len(tokens)).clone().requires_grad_(True)
    render = kokoro_torch.run(tokens, style)
    loss = resemblyzer_torch.embed(render.audio)[:8].sum() + render.f0_hz.mean() * 1e-3
    loss.backward()
    assert style.grad is not None and torch.isfinite(style.grad).all()
    assert style.grad[:128].abs().sum() > 0  # timbre half reaches the decoder
    assert style.grad[128:].abs().sum() > 0  # prosody half reaches the predictor


def test_per_layer_timbre_gets_a_gradient_in_every_layer(start_pack: np.ndarray) -> None:
    tokens = kokoro_torch.token_ids(PHONEMES)
    layers = torch.zeros(58, 128, requires_grad=True)
    render = kokoro_torch.run(tokens, kokoro_torch.style_row(start_pack, len(tokens)), layers=layers)
    resemblyzer_torch.embed(render.audio)[:8].sum().backward()
    assert layers.grad is not None and torch.isfinite(layers.grad).all()
    assert (layers.grad.abs().sum(dim=1) > 0).all()


def test_unknown_op_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = onnx.helper.make_node("Det", ["x"], ["y"])
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [])],
    )
    path = tmp_path / "det.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(UnsupportedGraph, match="Det"):
        OnnxTorchGraph(path)
