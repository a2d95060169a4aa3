"""Exact-ratio resampling between the caller's rate and the network's 32 kHz (polyphase FIR)."""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import resample_poly


def resample(pcm: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return pcm.astype(np.float32, copy=False)
    common = math.gcd(rate_in, rate_out)
    out = resample_poly(pcm, rate_out // common, rate_in // common)
    return out.astype(np.float32, copy=False)
