"""The ONNX Runtime path against the PyTorch reference, graph by graph and end to end."""

from pathlib import Path

import numpy as np
import onnx
import pytest

from synth.engines.gptsovits.backend import TorchBackend
from synth.engines.gptsovits.batching import DecodeRequest, decode_all
from synth.engines.gptsovits.runtime import OrtBackend, RuntimeUnavailable, choose_providers
from synth.engines.gptsovits.sampling import SamplingParams
from synth.engines.gptsovits.vocoder import VocodeRequest, frame_noise, vocode_batch


def test_exported_graphs_have_a_dynamic_batch_axis(onnx_dir: Path) -> None:
    for graph in ("prefill", "step", "vocode"):
        model = onnx.load(str(onnx_dir / f"{graph}.onnx"), load_external_data=False)
        first = model.graph.input[0].type.tensor_type.shape.dim[0]
        assert first.dim_param == "batch", graph
    step = onnx.load(str(onnx_dir / "step.onnx"), load_external_data=False)
    assert [o.name for o in step.graph.output] == ["logits", "new_k", "new_v"]  # no sampling inside


def test_prefill_step_and_vocoder_agree_with_pytorch(torch_backend: TorchBackend, ort_backend: OrtBackend) -> None:
    rng = np.random.default_rng(0)
    phones = rng.integers(1, 732, (3, 11))
    bert = rng.standard_normal((3, 1024, 11)).astype(np.float32) * 0.1
    args = (phones, np.array([11, 6, 9]), bert, rng.integers(0, 1024, (3, 4)), np.array([4, 0, 2]))
    for ref, got in zip(torch_backend.prefill(*args), ort_backend.prefill(*args), strict=True):
        assert np.allclose(ref, got, atol=1e-4)
    empty_prompt = (*args[:3], np.zeros((3, 0), np.int64), np.zeros(3, np.int64))
    assert np.allclose(torch_backend.prefill(*empty_prompt)[0], ort_backend.prefill(*empty_prompt)[0], atol=1e-4)

    dims = torch_backend.dims
    caches = [
        rng.standard_normal(shape).astype(np.float32)
        for _ in range(dims.n_layer)
        for shape in ((3, dims.heads, dims.head_dim, 7), (3, dims.heads, 7, dims.head_dim))
    ]
    mask = np.where(rng.random((3, 7)) < 0.7, 0.0, -1e9).astype(np.float32)
    step_args = (np.array([5, 1000, 77]), np.array([0, 4, 9]), mask, caches)
    for ref, got in zip(torch_backend.step(*step_args), ort_backend.step(*step_args), strict=True):
        assert np.allclose(ref, got, atol=1e-4)

    requests = [
        VocodeRequest(
            rng.integers(0, 1024, 12 - 3 * i),
            rng.integers(1, 732, 9 + i),
            rng.standard_normal(64).astype(np.float32),
            frame_noise(i, 32, 0.5),
        )
        for i in range(3)
    ]
    for ref, got in zip(vocode_batch(torch_backend, requests), vocode_batch(ort_backend, requests), strict=True):
        assert ref.shape == got.shape and np.abs(ref - got).max() < 1e-3

    wav = (rng.standard_normal((1, 16000 * 2)) * 0.1).astype(np.float32)
    assert (torch_backend.content_codes(wav) == ort_backend.content_codes(wav)).mean() > 0.95
    spec = rng.random((1, 1025, 60)).astype(np.float32)
    assert np.allclose(torch_backend.timbre(spec), ort_backend.timbre(spec), atol=1e-4)


def test_onnx_decoding_samples_the_same_tokens(torch_backend: TorchBackend, ort_backend: OrtBackend) -> None:
    rng = np.random.default_rng(5)
    params = [SamplingParams(seed=i, min_tokens=15, max_tokens=25, top_k=3 + i) for i in range(3)]
    requests = [DecodeRequest(rng.integers(1, 732, 8 + i), rng.integers(0, 1024, 3 * i), params[i]) for i in range(3)]
    assert decode_all(torch_backend, requests, 3) == decode_all(ort_backend, requests, 3)


def test_provider_preference_and_incomplete_exports(tmp_path: Path, torch_backend: TorchBackend) -> None:
    everything = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    chosen = choose_providers(everything, fp16=True)
    assert chosen[0] == ("TensorrtExecutionProvider", {"trt_fp16_enable": True})
    assert chosen[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["CPUExecutionProvider"], fp16=True) == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeUnavailable, match="not a complete export"):
        OrtBackend(tmp_path, torch_backend.dims)


def test_the_fp16_graph_for_gpus_stays_close_to_fp32(onnx_dir: Path, tmp_path: Path) -> None:
    """The CUDA path converts graphs to FP16 (FP32 inputs/outputs); CPU can run the result to check it."""
    import shutil

    import onnxruntime as ort

    from synth.engines.gptsovits.runtime import _fp16_copy

    shutil.copy(onnx_dir / "step.onnx", tmp_path / "step.onnx")
    half = _fp16_copy(tmp_path / "step.onnx")
    full = ort.InferenceSession(str(onnx_dir / "step.onnx"), providers=["CPUExecutionProvider"])
    fp16 = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    feeds: dict[str, np.ndarray] = {
        "tokens": np.array([3, 900]),
        "positions": np.array([1, 20]),
        "mask_bias": np.array([[0, 0, -1e9, 0, 0], [0, -1e9, -1e9, 0, 0]], np.float32),
    }
    n_layer = sum(1 for i in full.get_inputs() if i.name.startswith("k_"))
    for i in range(n_layer):
        feeds[f"k_{i}"] = rng.standard_normal((2, 4, 16, 5)).astype(np.float32)
        feeds[f"v_{i}"] = rng.standard_normal((2, 4, 5, 16)).astype(np.float32)
    for ref, got in zip(full.run(None, feeds), fp16.run(None, feeds), strict=True):
        assert got.dtype == np.float32 and np.abs(ref - got).max() < 0.02 * max(1.0, float(np.abs(ref).max()))
