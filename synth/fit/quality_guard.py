"""After a fit: the fitted voice must sound as clean as the stock pack it started from.

The fit's losses (speaker embedding, pitch, spectrum) say nothing about artefacts, and
an offset that moves the timbre toward a speaker can also make the engine buzz or rasp
(measured on two Mandarin speakers: DNSMOS 3.20 -> 2.45 and 3.20 -> 2.95 while the
judge's similarity rose). Here the offset is scaled back, step by step, until a
no-reference quality score (DNSMOS, never the judge) of the served engine's output is
no worse than the start pack's; at worst the start pack itself is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from synth.enroll.contract import FittedStyle

# Share of the fitted offset tried in turn; the first that sounds as clean as the start pack is kept.
SCALES = (1.0, 0.6, 0.3)
# DNSMOS points the fitted voice may fall below the start pack on one test sentence (the score's own
# spread between two renders of the same voice is about this).
TOLERANCE = 0.05

Scorer = Callable[[np.ndarray], float]  # candidate parameters -> quality of the served engine speaking with them


@dataclass(frozen=True)
class GuardResult:
    kept: np.ndarray  # the parameters kept: the first clean candidate, else the start
    scale: float  # share of the fitted offset kept (0: the start pack)
    start_quality: float
    quality: float
    tried: tuple[tuple[float, float], ...] = ()  # (share of the fit, its quality), in the order tried


def served_quality(language_hint: str) -> Callable[[FittedStyle], float]:
    """DNSMOS overall score of the test sentence spoken with a fitted style by the serving (int8) engine."""
    from synth.enroll import dnsmos, render, speech

    def score(fitted: FittedStyle) -> float:
        audio = render.render(fitted.pack, language_hint, layers=fitted.layers)
        return dnsmos.score(speech.to_16k(audio, render.RATE)).ovrl

    return score


def keep_quality(
    start_pack: np.ndarray,
    fitted_pack: np.ndarray,
    score: Scorer,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.process_time,
    scales: tuple[float, ...] = SCALES,
    tolerance: float = TOLERANCE,
) -> GuardResult:
    """The largest share of the fit (from `scales`) whose quality is within `tolerance` of the start pack's.

    `deadline` (on `clock`) stops trying smaller shares once another score would pass it; what has
    not been shown to sound clean is not kept, so the start pack is the answer then.
    """
    offset = fitted_pack - start_pack
    candidates = [(scale, (start_pack + scale * offset).astype(np.float32)) for scale in scales]
    return keep_first_clean(start_pack, candidates, score, deadline=deadline, clock=clock, tolerance=tolerance)


def keep_first_clean(
    start: np.ndarray,
    candidates: Sequence[tuple[float, np.ndarray]],
    score: Scorer,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.process_time,
    tolerance: float = TOLERANCE,
) -> GuardResult:
    """The first of `candidates` ((label, parameters), most of the fit first) whose quality is within
    `tolerance` of `start`'s; `start` itself when none is, or when no time is left to show it."""
    started = clock()
    start_quality = score(start)
    cost = clock() - started
    tried: list[tuple[float, float]] = []
    for label, candidate in candidates:
        if deadline is not None and clock() + cost > deadline:
            break
        quality = score(candidate)
        tried.append((label, quality))
        if quality >= start_quality - tolerance:
            return GuardResult(candidate, label, start_quality, quality, tuple(tried))
    return GuardResult(start.astype(np.float32), 0.0, start_quality, start_quality, tuple(tried))
