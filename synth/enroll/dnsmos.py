"""No-reference speech quality: Microsoft's DNSMOS (P.835 SIG/BAK/OVRL), ONNX models from the speechmos wheel.

Scores 9 s windows of 16 kHz audio on a 1..5 scale. A long recording is scored on a
few evenly spread windows only, so the cost stays bounded.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from pathlib import Path

import numpy as np

RATE = 16000
WINDOW = int(9.01 * RATE)
MAX_WINDOWS = 3
# Polynomials that map the network's raw outputs onto the P.835 scale (DNSMOS, non-personalised).
_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
_OVRL = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


@dataclasses.dataclass(frozen=True)
class MosScores:
    sig: float  # speech signal quality
    bak: float  # background noise (higher = quieter background)
    ovrl: float  # overall


def model_path() -> Path:
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the quality score needs the 'speechmos' package: pip install speechmos")
    path = Path(next(iter(spec.submodule_search_locations))) / "dnsmos_models" / "sig_bak_ovr.onnx"
    if not path.is_file():
        raise RuntimeError(f"speechmos is installed but its DNSMOS model is missing ({path})")
    return path


@functools.cache
def _session():  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])


def score(pcm16k: np.ndarray, max_windows: int = MAX_WINDOWS) -> MosScores:
    audio = np.clip(pcm16k.astype(np.float32), -1.0, 1.0)
    if audio.size == 0:
        return MosScores(1.0, 1.0, 1.0)
    while audio.size < WINDOW:  # short clips are repeated up to one window, as DNSMOS does
        audio = np.concatenate([audio, audio])
    last = audio.size - WINDOW
    count = min(max_windows, 1 + last // RATE)
    starts = np.linspace(0, last, count).astype(int)
    raw = np.array([_session().run(None, {"input_1": audio[s : s + WINDOW][None]})[0][0] for s in starts])
    return MosScores(float(_SIG(raw[:, 0]).mean()), float(_BAK(raw[:, 1]).mean()), float(_OVRL(raw[:, 2]).mean()))
