"""Models that ship inside installed wheels: find their files, and open them on one ONNX Runtime thread."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def packaged_file(package: str, relative: str, *, purpose: str, distribution: str) -> Path:
    """The path of `relative` inside the installed `package`, or a RuntimeError saying how to get it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{purpose} needs the '{distribution}' package: pip install {distribution}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise RuntimeError(f"{distribution} is installed but its model file is missing ({path})")
    return path


def single_thread_session(path: Path) -> Any:
    """One intra-op and one inter-op thread: enrollment runs beside live synthesis and must stay small."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
