"""How loud a render is: ITU-R BS.1770 integrated loudness (pyloudnorm), and the gain between two renders.

For the benchmarks that ask whether a fit's DNSMOS change is its level's (bench/guard_replay.py --level-matched):
a fit moves the engine's output level by a few dB (it trains on level-free losses), and DNSMOS P.835 is not
level-free (jf_gongitsune's three benchmark sentences score 3.26 as rendered, 3.35 at -6 dB, 3.02 at +3 dB).
"""

from __future__ import annotations

import functools

import numpy as np

RATE = 24000
# A gain beyond this says the render is broken (near silence), not that the voice speaks softly.
MAX_GAIN_DB = 12.0


@functools.lru_cache(maxsize=4)
def _meter(rate: int):  # type: ignore[no-untyped-def]
    import pyloudnorm

    return pyloudnorm.Meter(rate)


def integrated_lufs(audio: np.ndarray, rate: int = RATE) -> float:
    """BS.1770 integrated loudness (LUFS, gated) of mono audio of at least 0.4 s."""
    return float(_meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64)))


def matching_gain(audio: np.ndarray, reference: np.ndarray, rate: int = RATE) -> float:
    """Linear gain that makes `audio` as loud as `reference`, within ±MAX_GAIN_DB."""
    difference = integrated_lufs(reference, rate) - integrated_lufs(audio, rate)
    if not np.isfinite(difference):
        return 1.0
    return float(10 ** (np.clip(difference, -MAX_GAIN_DB, MAX_GAIN_DB) / 20))
