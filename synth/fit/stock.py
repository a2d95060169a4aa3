"""The engine's built-in style packs, and the one nearest an enrolled voice."""

from __future__ import annotations

import functools

import numpy as np

from synth.enroll.contract import FitTarget


@functools.lru_cache(maxsize=1)
def stock_packs() -> dict[str, np.ndarray]:
    """Built-in style packs by name, each float32 [510, 1, 256] (read-only)."""
    from synth.enroll.render import stock_packs as load

    packs = load()
    for pack in packs.values():
        pack.setflags(write=False)
    return packs


def nearest_stock_pack(target: FitTarget) -> tuple[str, np.ndarray]:
    """The stock voice whose rendered speech is nearest the recording by the fitting encoder.

    Uses the stock voices' Resemblyzer prints measured on their rendered test sentence
    (committed with the enrollment code, so choosing costs no synthesis).
    """
    from synth.enroll.tasks import nearest_stock

    name = nearest_stock(np.asarray(target.voiceprint, dtype=np.float32))
    return name, stock_packs()[name].copy()
