"""After the style fit: measure the voice's colour (synth.voice_colour), keep as much as sounds clean.

The colour is the recording's long-term spectrum against the fitted pack's, measured on the
first COLOUR_SENTENCES of each language's training sentences rendered by the serving engine.
As for the pack, a no-reference quality score (DNSMOS, never the judge) of those renders,
filtered, decides how much of it is kept: a strong curve can make a voice boom or hiss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synth import voice_colour
from synth.enroll.contract import FitTarget, check_pack
from synth.fit.quality_guard import GuardResult, keep_quality
from synth.fit.style_fit import training_texts

# Shares of the measured curve tried in turn, and the DNSMOS points the filtered renders may lose. The
# guard's verdict on the training renders foresees the benchmark sentences' only loosely (correlation 0.24
# over 116 fits), so a tight tolerance throws likeness away on noise: replayed on 9 served packs
# (colour_variants_s23_tol.json), 0.02 kept similarity 0.453 (6/9 top-1) at P.835 3.169, 0.05 kept
# 0.470 (7/9) at 3.160. The style guard has its own (quality_guard.TOLERANCE).
SHARES = (1.0, 0.75, 0.5, 0.25)
TOLERANCE = 0.05
# The colour is measured on the first three training sentences of each language whatever the style fit trains on:
# the runs that chose six for the style fit (docs/voice-fit.md) measured the colour on three, and each sentence
# more is one more render and one more DNSMOS-scored second per share tried.
COLOUR_SENTENCES = 3


@dataclass(frozen=True, eq=False)
class ColourResult:
    taps: np.ndarray | None  # None: no colour kept
    gains_db: np.ndarray  # the kept curve per mel band (for reports), dB
    guard: GuardResult | None


@dataclass(frozen=True, eq=False)
class MeasuredColour:
    gains: np.ndarray  # natural-log amplitude per mel band, the whole measured curve
    render_mean: np.ndarray  # long-term log-mel of the renders it was measured against
    renders: np.ndarray  # those renders, joined (24 kHz)

    def taps(self, share: float = 1.0) -> np.ndarray | None:
        """The filter for `share` of the curve, at the renders' level; None for no colour."""
        if share == 0.0 or not self.gains.any():
            return None
        return voice_colour.design_filter(voice_colour.loudness_neutral(share * self.gains, self.render_mean))


def measure_colour(target: FitTarget, pack: np.ndarray, layers: np.ndarray | None = None) -> MeasuredColour:
    """The curve from the renders of the training sentences (style `pack`, per-layer timbre `layers`) to the
    recording (no quality check)."""
    from synth.enroll import render

    pack = check_pack(pack)
    texts = training_texts(target.language_hint, COLOUR_SENTENCES)
    renders = np.concatenate([render.render_text(pack, text, lang, layers=layers) for text, lang in texts])
    render_mean = voice_colour.speech_logmel_mean(renders)
    return MeasuredColour(voice_colour.colour_gains(target.logmel_mean, render_mean), render_mean, renders)


def dnsmos_quality(audio24k: np.ndarray) -> float:
    from synth.enroll import dnsmos, speech

    return dnsmos.score(speech.to_16k(audio24k, voice_colour.RATE)).ovrl


def fit_colour(
    target: FitTarget,
    pack: np.ndarray,
    *,
    layers: np.ndarray | None = None,
    deadline: float | None = None,
    quality: Callable[[np.ndarray], float] = dnsmos_quality,
) -> ColourResult:
    """The colour to give `pack`'s output so that it sounds like `target`'s recording.

    `deadline` (process CPU time) bounds the quality checks: a share not shown to sound clean
    is not kept. `quality` scores 24 kHz audio (higher is cleaner).
    """
    return keep_clean_share(measure_colour(target, pack, layers), deadline=deadline, quality=quality)


def keep_clean_share(
    measured: MeasuredColour,
    *,
    deadline: float | None = None,
    quality: Callable[[np.ndarray], float] = dnsmos_quality,
) -> ColourResult:
    """The largest share (of SHARES) of the measured curve whose filtered renders sound as clean as the renders."""
    # The colour is a filter after the engine, so each share is judged on the same renders, filtered:
    # a paired comparison, free of the spread between two renders of one voice (about 0.05 DNSMOS).
    guard = keep_quality(
        np.zeros(1, np.float32),
        np.ones(1, np.float32),
        lambda share: quality(voice_colour.apply(measured.taps(float(share[0])), measured.renders)),
        deadline=deadline,
        clock=time.process_time,
        scales=SHARES,
        tolerance=TOLERANCE,
    )
    return ColourResult(measured.taps(guard.scale), guard.scale * measured.gains * 20.0 / np.log(10.0), guard)
