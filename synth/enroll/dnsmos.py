"""No-reference speech quality: Microsoft's DNSMOS (P.835 SIG/BAK/OVRL), ONNX models from the speechmos wheel.

Scores 9 s windows of 16 kHz audio on a 1..5 scale. A long recording is scored on a
few evenly spread windows only, so the cost stays bounded.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from synth.enroll.packaged_models import packaged_file, single_thread_session
from synth.yielding import wait_while_rendering

RATE = 16000
WINDOW = int(9.01 * RATE)
MAX_WINDOWS = 3
# Polynomials that map the network's raw outputs onto the P.835 scale (DNSMOS, non-personalised).
SIG_SCALE = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
BAK_SCALE = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
OVRL_SCALE = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


@dataclasses.dataclass(frozen=True)
class MosScores:
    sig: float  # speech signal quality
    bak: float  # background noise (higher = quieter background)
    ovrl: float  # overall


def model_path() -> Path:
    return packaged_file(
        "speechmos", "dnsmos_models/sig_bak_ovr.onnx", purpose="the quality score", distribution="speechmos"
    )


@functools.cache
def _session():  # type: ignore[no-untyped-def]
    return single_thread_session(model_path())


def _score_window(window: np.ndarray) -> np.ndarray:
    wait_while_rendering()  # in a fit process, the server's speech first (synth.yielding)
    return _session().run(None, {"input_1": window[None]})[0][0]


def score(pcm16k: np.ndarray, max_windows: int = MAX_WINDOWS) -> MosScores:
    audio = np.clip(pcm16k.astype(np.float32), -1.0, 1.0)
    if audio.size == 0:
        return MosScores(1.0, 1.0, 1.0)
    while audio.size < WINDOW:  # short clips are repeated up to one window, as DNSMOS does
        audio = np.concatenate([audio, audio])
    last = audio.size - WINDOW
    count = min(max_windows, 1 + last // RATE)
    starts = np.linspace(0, last, count).astype(int)
    raw = np.array([_score_window(audio[s : s + WINDOW]) for s in starts])
    sig, bak, ovrl = (float(scale(raw[:, i]).mean()) for i, scale in enumerate((SIG_SCALE, BAK_SCALE, OVRL_SCALE)))
    return MosScores(sig, bak, ovrl)
