"""The CPU-heavy steps of enrollment, as plain functions run inside the background worker process.

Arguments and results are plain picklable values (bytes, arrays, dicts): the recording
travels to the worker through a pipe, in memory, and never touches the disk.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from synth.engines.kokoro_layers import check_layers
from synth.enroll.contract import FitTarget, check_pack, load_fit_function
from synth.enroll.quality import GateLimits, Progress

MAX_SECONDS = 300.0
# CPU seconds of the fit budget kept for the colour: up to six short renders (about 1.5 CPU-s per second
# of audio on a 2-core AVX2 machine) and up to five quality scores (about 1 CPU-s each).
COLOUR_CPU_S = 25.0
# The colour still runs when the style fit overran its share by a little (its last step or quality score can end
# past it): the colour's renders come first and its quality checks stop at the budget's end. Requiring the whole
# COLOUR_CPU_S made any overrun, however small, cost the voice its colour.
COLOUR_MIN_CPU_S = 0.8 * COLOUR_CPU_S


@dataclasses.dataclass(frozen=True, eq=False)
class AnalysisResult:
    quality: dict[str, Any]
    accepted: bool
    target: dict[str, np.ndarray] | None  # FitTarget.arrays() when accepted
    judge_print: np.ndarray | None  # the judge's embedding of the recording
    start_stock: str | None  # nearest built-in voice by the fitting encoder
    start_similarity_raw: float | None  # judge cosine of that voice's test sentence to the recording


@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    pack: np.ndarray
    layers: np.ndarray | None  # per-layer timbre [58, 128] (synth.engines.kokoro_layers), None: zeros
    colour: np.ndarray | None  # FIR taps (synth.voice_colour), None when no colour sounded clean
    similarity_raw: float
    method: str
    colour_share: float | None  # share of the measured colour kept (0 to 1); None: the fit left no time for it
    cpu_s: float  # CPU seconds of the whole fit, scoring included
    denoise: float = 0.0  # share of the noise suppressor's output in the voice's (synth.output_denoise)


@functools.cache
def stock_prints() -> dict[str, dict[str, np.ndarray]]:
    """Fitting-encoder and judge embeddings of the test sentence in each stock voice (see calibrate.py)."""
    raw = json.loads((Path(__file__).parent / "stock_prints.json").read_text())
    return {name: {k: np.asarray(v, dtype=np.float32) for k, v in prints.items()} for name, prints in raw.items()}


def analyse_recording(
    data: bytes,
    limits: GateLimits,
    language_hint: str,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Decode, gate, and (when accepted) extract the fit target and the judge's print of the recording."""
    from synth.audio_io import decode_audio
    from synth.enroll import features, judge, quality

    report = progress or (lambda fraction, stage: None)
    report(0.0, "reading the recording")
    pcm24k = decode_audio(data, sample_rate=24000, max_seconds=max(MAX_SECONDS, limits.max_duration_s))
    gate_report, analysis = quality.assess(pcm24k, limits, lambda f, s: report(0.05 + 0.75 * f, s))
    if not gate_report.ok:
        return AnalysisResult(gate_report.to_dict(), False, None, None, None, None)
    report(0.8, "measuring the voice")
    target = features.extract(analysis, language_hint)
    judge_print = judge.embed(analysis.speech16k())
    start_stock = nearest_stock(target.voiceprint)
    start_raw = judge.cosine(stock_prints()[start_stock]["judge"], judge_print)
    report(1.0, "done")
    return AnalysisResult(gate_report.to_dict(), True, target.arrays(), judge_print, start_stock, start_raw)


def nearest_stock(voiceprint_: np.ndarray) -> str:
    prints = stock_prints()
    return max(prints, key=lambda name: float(np.dot(prints[name]["voiceprint"], voiceprint_)))


def fit_voice(
    target_arrays: dict[str, np.ndarray],
    language_hint: str,
    start_pack: np.ndarray,
    judge_print: np.ndarray,
    cpu_budget_s: float,
    progress: Callable[[float, str], None],
    per_layer_timbre: bool = True,
) -> FitResult:
    """Fit a style pack and a colour to the target, then score them with the judge (which the fit never sees)."""
    import time

    from synth.enroll import judge, render
    from synth.fit.colour_fit import fit_colour

    started = time.process_time()
    fit, method = load_fit_function()
    target = FitTarget.from_arrays(target_arrays, language_hint)
    fitted = fit(
        target,
        check_pack(start_pack),
        progress=lambda f, s: progress(0.85 * f, s),
        cpu_budget_s=max(1.0, cpu_budget_s - COLOUR_CPU_S),
        per_layer_timbre=per_layer_timbre,
    )
    pack = check_pack(fitted.pack)
    layers = None if fitted.layers is None else check_layers(fitted.layers)
    colour, colour_share = None, None
    if started + cpu_budget_s - time.process_time() >= COLOUR_MIN_CPU_S:  # else no time to show it sounds clean
        progress(0.85, "matching the colour of the recording")
        fitted_colour = fit_colour(target, pack, layers=layers, deadline=started + cpu_budget_s)
        colour = fitted_colour.taps
        colour_share = fitted_colour.guard.scale if fitted_colour.guard is not None else 0.0
    progress(0.95, "scoring the new voice")
    rendered = render.render(pack, render.language_of_test_sentence(language_hint), colour, layers, fitted.denoise)
    similarity_raw = judge.cosine(judge.embed_speech_of(rendered, render.RATE), judge_print)
    progress(1.0, "done")
    return FitResult(
        pack, layers, colour, similarity_raw, method, colour_share, time.process_time() - started, fitted.denoise
    )
