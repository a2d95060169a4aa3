"""ONNX Runtime backend: the exported sub-graphs on TensorRT, CUDA or CPU, whichever exists.

Provider choice, best first: TensorRT (FP16 engines when `fp16`), CUDA (the graphs are
converted to FP16 with FP32 inputs/outputs when `fp16`), CPU (FP32). The autoregressive
step reads the host's cache arrays in place, so nothing the size of the cache is copied
per token on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

from synth.engines.gptsovits.backend import Dims
from synth.engines.gptsovits.onnx_export import GRAPHS, MANIFEST

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class RuntimeUnavailable(RuntimeError):
    """onnxruntime is missing or the export directory is incomplete."""


def choose_providers(available: list[str], fp16: bool, cache_dir: Path | None = None) -> list[str | tuple[str, dict]]:  # type: ignore[type-arg]
    chosen: list[str | tuple[str, dict]] = []  # type: ignore[type-arg]
    for name in PREFERRED:
        if name not in available:
            continue
        if name == "TensorrtExecutionProvider":
            options: dict[str, object] = {"trt_fp16_enable": fp16}
            if cache_dir is not None:
                options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)}
            chosen.append((name, options))
        else:
            chosen.append(name)
    return chosen


class OrtBackend:
    def __init__(
        self,
        onnx_dir: Path,
        dims: Dims,
        threads: int = 1,
        fp16: bool = True,
        providers: list[str] | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
            raise RuntimeUnavailable(
                "onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)"
            ) from exc
        manifest = onnx_dir / MANIFEST
        if not manifest.exists() or any(not (onnx_dir / f"{g}.onnx").exists() for g in GRAPHS):
            raise RuntimeUnavailable(
                f"{onnx_dir} is not a complete export; run python -m synth.engines.gptsovits.onnx_export"
            )
        if json.loads(manifest.read_text())["n_layer"] != dims.n_layer:
            raise RuntimeUnavailable(f"{onnx_dir} was exported from different weights (layer count differs)")
        self.dims = dims
        chosen = choose_providers(providers or ort.get_available_providers(), fp16, onnx_dir / "trt-cache")
        self.provider = chosen[0] if isinstance(chosen[0], str) else chosen[0][0]
        self.name = f"onnx:{self.provider.removesuffix('ExecutionProvider').lower()}"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._sessions = {}
        for graph in GRAPHS:
            path = onnx_dir / f"{graph}.onnx"
            if fp16 and self.provider == "CUDAExecutionProvider":
                path = _fp16_copy(path)
            self._sessions[graph] = ort.InferenceSession(str(path), options, providers=chosen)
        self._cache_names = [f"{kind}_{i}" for i in range(dims.n_layer) for kind in ("k", "v")]

    def prefill(self, phones, phone_lens, bert, prompt, prompt_lens):  # type: ignore[no-untyped-def]
        feeds = {
            "phones": phones,
            "phone_lens": phone_lens,
            "bert": bert,
            "prompt": prompt,
            "prompt_lens": prompt_lens,
        }
        return tuple(self._sessions["prefill"].run(None, feeds))

    def step(self, tokens, positions, mask_bias, caches):  # type: ignore[no-untyped-def]
        feeds = {"tokens": tokens, "positions": positions, "mask_bias": mask_bias}
        feeds.update(zip(self._cache_names, caches, strict=True))
        return tuple(self._sessions["step"].run(None, feeds))

    def vocode(self, codes, code_lens, phones, phone_lens, ge, noise):  # type: ignore[no-untyped-def]
        feeds = {
            "codes": codes,
            "code_lens": code_lens,
            "phones": phones,
            "phone_lens": phone_lens,
            "ge": ge,
            "noise": noise,
        }
        return self._sessions["vocode"].run(None, feeds)[0]

    def content_codes(self, wav16k):  # type: ignore[no-untyped-def]
        return self._sessions["content"].run(None, {"wav16k": wav16k})[0]

    def timbre(self, spec):  # type: ignore[no-untyped-def]
        return self._sessions["timbre"].run(None, {"spec": spec})[0]


def _fp16_copy(path: Path) -> Path:
    """An FP16 version of a graph (FP32 inputs/outputs kept) for the CUDA provider, made once."""
    target = path.with_suffix(".fp16.onnx")
    if not target.exists():
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        onnx.save(model, str(target))
    return target
