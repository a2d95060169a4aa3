"""The synthesis path's watermark step, on by default; turning it off is logged loudly."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from synth.watermark.watermarker import Watermarker

log = logging.getLogger(__name__)

ChunkFilter = Callable[[np.ndarray, int], np.ndarray]


def watermark_chunk_filter(
    enabled: bool, on_embed: Callable[[float, float], None] | None = None
) -> tuple[ChunkFilter | None, Watermarker | None]:
    """(filter to run on each clause's PCM, the Watermarker behind it); (None, None) when disabled."""
    if not enabled:
        log.warning(
            "WATERMARK OFF: synthetic speech from this server carries NO watermark and cannot be "
            "identified as synthetic by `voxroom detect` (VOXROOM_WATERMARK=off)"
        )
        return None, None
    watermarker = Watermarker(on_embed=on_embed)
    log.info("watermark on: every clause is marked before Opus encoding")
    return watermarker.embed, watermarker
