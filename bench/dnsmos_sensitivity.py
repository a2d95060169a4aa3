"""How far do DNSMOS and the judge move when a fitted voice moves a hair?

Two fits of one recording by the same code, a step apart, can sound alike to the judge and not to DNSMOS: en_1688's
whole fit in voice_similarity_s34_t61 and in s35's fixed-step run judged 0.7630 and 0.7631 raw, and scored P.835
3.261 and 3.079 on the benchmark's sentences (and 2.88 and 3.06 on the quality guard's passage). Is that DNSMOS
answering to a change too small to hear, and which half of the style carries it?

For every whole fit saved by a voice_similarity run (--save-packs): copies whose offset from the start pack is scaled,
dimension by dimension, by 1 + EPS * N(0, 1) (EPS = 1%), in the timbre half of the style and the per-layer timbre,
or in the prosody half alone (which sets durations and pitch), each scored like the benchmark (judge similarity
on the 0..1 scale and P.835 on its three sentences) and like the quality guard (the mean change of its two
sentences from the start pack's, and whether that passes its tolerance). Reports each speaker's spread over its
copies and, pooled, the median spread and how many speakers' guard verdicts flip between copies.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/dnsmos_sensitivity.py --packs DIR --results NAME [--speakers A,B] [--copies 5] [--out NAME2]
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_results_option, parse_replay, write_replay  # noqa: E402
from bench.voice_similarity import saved_fits, saved_run, score_output, speak  # noqa: E402

EPS = 0.01  # relative size of the hair, per dimension of the offset
HALVES = ("timbre", "prosody")
SCORES = ("p835", "similarity", "guard_change")


def hair_apart(start: np.ndarray, whole: Any, half: str, rng: np.random.Generator) -> Any:
    """`whole` (a FittedStyle) with its offset from `start` scaled per dimension by 1 + EPS * N(0, 1) in `half`:
    the timbre half of the style and the per-layer timbre, or the prosody half of the style."""
    scale = np.ones(256, np.float32)
    dims = slice(0, 128) if half == "timbre" else slice(128, 256)
    scale[dims] += EPS * rng.standard_normal(128).astype(np.float32)
    pack = (start + (whole.pack - start) * scale).astype(np.float32)  # the offset is the same on every row
    layers = whole.layers
    if half == "timbre" and layers is not None:
        layers = (layers * (1.0 + EPS * rng.standard_normal(layers.shape))).astype(np.float32)
    return replace(whole, pack=pack, layers=layers)


def spread(values: list[float]) -> dict[str, float]:
    return {"sd": round(float(np.std(values, ddof=1)), 4), "range": round(float(np.ptp(values)), 4)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from synth.fit.quality_guard import TOLERANCE

    summary: dict[str, Any] = {"speakers": len(rows), "eps": EPS, "guard_tolerance": TOLERANCE}
    for half in HALVES:
        found = [row[half] for row in rows if half in row]
        if not found:
            continue
        summary[half] = {
            f"median_sd_{score}": round(float(np.median([f["spread"][score]["sd"] for f in found])), 4)
            for score in SCORES
        } | {
            "median_range_p835": round(float(np.median([f["spread"]["p835"]["range"] for f in found])), 4),
            "guard_verdict_flips": f"{sum(f['guard_flips'] for f in found)}/{len(found)}",
        }
    return summary


def add_options(parser: argparse.ArgumentParser) -> None:
    add_results_option(parser)
    parser.add_argument("--copies", type=int, default=5, help="copies a hair apart per speaker and half")


def main(argv: list[str]) -> None:
    args = parse_replay(argv, __doc__, "dnsmos_sensitivity", summarise, add_options)
    if args is None:
        return
    from synth.enroll.contract import FittedStyle
    from synth.fit.quality_guard import TOLERANCE, served_quality, sounds_clean

    started = time.perf_counter()
    rows_in, probes, engine = saved_run(args.results, args.voices, args.speakers)
    rows = []
    for row, lang, start, whole in saved_fits(args.packs, rows_in):
        speaker = row["speaker"]
        guard_score = served_quality(lang)
        start_scores = guard_score(FittedStyle(start, None))

        def scored(fitted: FittedStyle) -> dict[str, Any]:
            bench = score_output(speak(engine, fitted, lang), probes, speaker)  # noqa: B023 (used in this loop only)
            change = guard_score(fitted) - start_scores  # noqa: B023
            return {"p835": bench["dnsmos_ovrl"], "similarity": bench["normalised"], "top1": bench["top1"],
                    "guard_change": round(float(change.mean()), 3), "guard_clean": sounds_clean(change, TOLERANCE)}

        out: dict[str, Any] = {"speaker": speaker, "whole": scored(whole)}
        rng = np.random.default_rng(zlib.crc32(speaker.encode()))  # the same copies on every run
        for half in HALVES:
            copies = [out["whole"]] + [scored(hair_apart(start, whole, half, rng)) for _ in range(args.copies)]
            out[half] = {
                "copies": copies[1:],
                "spread": {score: spread([c[score] for c in copies]) for score in SCORES},
                "guard_flips": len({c["guard_clean"] for c in copies}) > 1,
            }
        rows.append(out)
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): " + ", ".join(
            f"{half} P.835 sd {out[half]['spread']['p835']['sd']:.3f} range {out[half]['spread']['p835']['range']:.3f}"
            f" similarity sd {out[half]['spread']['similarity']['sd']:.3f}"
            f" guard sd {out[half]['spread']['guard_change']['sd']:.3f}" for half in HALVES),
            file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": f"spread of P.835, judge similarity and the guard's change over copies of each whole fit whose offset "
                f"is scaled per dimension by 1 + {EPS} * N(0, 1), in the timbre or the prosody half (the whole fit "
                f"itself is one of the copies)",
        "packs": str(args.packs),
        "results": args.results,
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
