"""How far is each voice from top-1, and how far could it be? Margins by the judge, recording against clone.

Top-1 asks whether a speaker's voice is nearer (by the judge) its own probe than any other speaker's.
Some speakers are near others to begin with: their own recordings leave little room. For every speaker
this scores, against all nine probes:
- the enrollment recording itself (the best any clone could hope to sound like);
- the stock voice the fit started from, and the served voice of a voice_similarity run saved with
  --save-packs (pack, per-layer timbre, suppressor, and the share of colour that run's guard kept);
and reports each one's margin: cosine to its own probe minus the nearest other speaker's (negative: a
miss, by that much).

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/top1_margin.py --packs DIR --results NAME [--speakers A,B] [--out top1_margin]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_results_option, parse_replay, write_replay  # noqa: E402
from bench.voice_similarity import read_24k, saved_run, saved_voice, speak  # noqa: E402


def margins(print_: np.ndarray, probes: dict[str, np.ndarray], speaker: str) -> dict[str, Any]:
    """The judge's cosine of `print_` to `speaker`'s probe, to the nearest other probe, and the margin between."""
    from synth.enroll import judge

    sims = {name: judge.cosine(print_, probe) for name, probe in probes.items()}
    nearest_other = max((name for name in sims if name != speaker), key=sims.__getitem__)
    return {
        "own": round(sims[speaker], 4),
        "nearest_other": nearest_other,
        "nearest_other_cosine": round(sims[nearest_other], 4),
        "margin": round(sims[speaker] - sims[nearest_other], 4),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"speakers": len(rows)}
    for kind in ("recording", "stock", "served"):
        found = [row[kind]["margin"] for row in rows]
        summary[kind] = {
            "top1": f"{sum(m > 0 for m in found)}/{len(found)}",
            "median_margin": round(float(np.median(found)), 4),
            "misses": {row["speaker"]: row[kind]["margin"] for row in rows if row[kind]["margin"] <= 0},
        }
    # How much of the recording's own room the served voice keeps: its margin over the recording's.
    summary["served_share_of_recording_margin"] = {
        row["speaker"]: round(row["served"]["margin"] / row["recording"]["margin"], 3) for row in rows
    }
    return summary


def main(argv: list[str]) -> None:
    args = parse_replay(argv, __doc__, "top1_margin", summarise, add_results_option)
    if args is None:
        return

    from synth.enroll import judge
    from synth.enroll.contract import FittedStyle

    started = time.perf_counter()
    rows_in, probes, engine = saved_run(args.results, args.voices, args.speakers)
    rows = []
    for row in rows_in:
        speaker = row["speaker"]
        saved = saved_voice(args.packs, args.voices, row)
        lang, stock, served, share, colour = saved.lang, saved.stock, saved.served, saved.colour_share, saved.colour
        recording = judge.embed_speech_of(read_24k(args.voices / f"{speaker}_enroll.wav"), 24000)
        rows.append({
            "speaker": speaker,
            "colour_share": share,
            "recording": margins(recording, probes, speaker),
            "stock": margins(judge.embed_speech_of(speak(engine, FittedStyle(stock), lang), 24000), probes, speaker),
            "served": margins(judge.embed_speech_of(speak(engine, served, lang, colour), 24000), probes, speaker),
        })
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): " + ", ".join(
            f"{kind} {rows[-1][kind]['margin']:+.3f}" for kind in ("recording", "stock", "served")),
            file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": "judge cosine to the speaker's own probe minus to the nearest other speaker's probe (margin > 0: "
                "top-1), for the enrollment recording, the stock voice and the served voice",
        "packs": str(args.packs),
        "results": args.results,
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
