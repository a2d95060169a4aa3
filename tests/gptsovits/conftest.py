"""Tiny random GPT-SoVITS models in the official layouts, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synth.engines.gptsovits.backend import TorchBackend
from synth.engines.gptsovits.loader import ModelFiles, TorchModels, load_torch_models
from synth.engines.gptsovits.tiny import build

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gptsovits-tiny")
    build(out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_models(tiny_dir: Path) -> TorchModels:
    return load_torch_models(ModelFiles.find(tiny_dir))


@pytest.fixture(scope="session")
def torch_backend(tiny_models: TorchModels) -> TorchBackend:
    return TorchBackend(tiny_models)


@pytest.fixture(scope="session")
def onnx_dir(tiny_models: TorchModels, tiny_dir: Path) -> Path:
    from synth.engines.gptsovits.onnx_export import export_all

    return export_all(tiny_models, tiny_dir / "onnx")


@pytest.fixture(scope="session")
def ort_backend(onnx_dir: Path, torch_backend: TorchBackend):  # type: ignore[no-untyped-def]
    from synth.engines.gptsovits.runtime import OrtBackend

    return OrtBackend(onnx_dir, torch_backend.dims, threads=1)
