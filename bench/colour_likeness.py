"""Does the fitting encoder foresee whether a voice's colour makes it more like its speaker?

The colour guard (synth/fit/colour_fit.py) keeps the largest share of a voice's colour that sounds
clean by DNSMOS; it never asks whether the colour makes the voice more like the speaker. For most
speakers it does, but on some recordings the long-term spectrum is more channel than voice and the
colour moves the voice toward someone else (bench/colour_cross.py: on the stock voices en_1998 gains
0.05, zh_S0765 nothing, zh_THCHS30-D4 loses 0.04).

For every speaker of a voice_similarity run saved with --save-packs, each share of its measured
colour (0, and colour_fit.SHARES) is scored twice:
- as the fit could see it: Resemblyzer's cosine (the fitting encoder, never the judge) between the
  filtered training renders and the recording's voiceprint, and the colour guard's DNSMOS of them;
- as the style guard would hear it: DNSMOS of the style guard's passage (about 9 s the fit never trained on)
  spoken in the served style and filtered, one window ("passage_dnsmos");
- as the benchmark sees it: the served voice (pack, layers, colour, suppressor) speaking the three
  evaluation sentences, judged against the probe (similarity, top-1, DNSMOS P.835 and P.808).
Then guard policies are replayed on the table: the served one (the first share within the DNSMOS
tolerance) and ones that also ask the fitting encoder.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/colour_likeness.py --packs DIR [--speakers A,B] [--out colour_likeness]
    python bench/colour_likeness.py --merge SHARD1,SHARD2 --out colour_likeness
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import changes_from_start, correlation, parse_replay, write_replay  # noqa: E402
from bench.voice_similarity import enrolled_target, score_output, served_style, speak, speakers_and_probes  # noqa: E402

Share = dict[str, Any]  # one share's scores: "share", "fit_cosine", "guard_dnsmos", "passage_dnsmos", "bench"
Policy = Callable[[list[Share]], Share]


def clean_on(*keys: str, tolerance: float = 0.05) -> Policy:
    """The colour guard's rule (the largest share within `tolerance` of no colour) on each of the guard's scores
    `keys`: "guard_dnsmos" alone is the guard as it runs."""
    def policy(shares: list[Share]) -> Share:
        start = shares[0]
        return next((s for s in shares[:0:-1] if all(s[k] >= start[k] - tolerance for k in keys)), start)
    return policy


served_policy = clean_on("guard_dnsmos")


def likeness_checked(shares: list[Share], tolerance: float = 0.05, margin: float = 0.0) -> Share:
    """The largest share within the DNSMOS tolerance whose training renders the fitting encoder finds more like
    the recording than without colour (by `margin`)."""
    start = shares[0]
    return next((s for s in shares[:0:-1] if s["guard_dnsmos"] >= start["guard_dnsmos"] - tolerance
                 and s["fit_cosine"] >= start["fit_cosine"] + margin), start)


def most_alike_clean(shares: list[Share], tolerance: float = 0.05) -> Share:
    """Of the shares within the DNSMOS tolerance (no colour included), the one the fitting encoder finds most alike."""
    start = shares[0]
    clean = [s for s in shares if s["guard_dnsmos"] >= start["guard_dnsmos"] - tolerance]
    return max(clean, key=lambda s: s["fit_cosine"])


POLICIES: dict[str, Policy] = {
    "none": lambda shares: shares[0],
    "whole": lambda shares: shares[-1],
    "served": served_policy,
    "likeness_checked": likeness_checked,
    "likeness_checked_0.01": lambda shares: likeness_checked(shares, margin=0.01),
    "most_alike_clean": most_alike_clean,
}
# Policies that need the style guard's passage scored (rows from before it was, lack it).
PASSAGE_POLICIES: dict[str, Policy] = {
    "clean_on_passage": clean_on("passage_dnsmos"),
    "clean_on_both": clean_on("guard_dnsmos", "passage_dnsmos"),
}


def summarise(rows: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    summary: dict[str, object] = {"speakers": len(rows)}
    heard_passage = all("passage_dnsmos" in s for row in rows for s in row["shares"])
    for name, policy in (POLICIES | PASSAGE_POLICIES if heard_passage else POLICIES).items():
        kept = [(row["speaker"], policy(row["shares"])) for row in rows]
        benches = [share["bench"] for _, share in kept]
        summary[name] = {
            "mean_normalised": round(float(np.mean([b["normalised"] for b in benches])), 4),
            "top1": f"{sum(bool(b['top1']) for b in benches)}/{len(benches)}",
            "mean_dnsmos_ovrl": round(float(np.mean([b["dnsmos_ovrl"] for b in benches])), 3),
            "mean_dnsmos_p808": round(float(np.mean([b["dnsmos_p808"] for b in benches])), 3),
            "kept": {speaker: share["share"] for speaker, share in kept},
        }
    # Does the fitting encoder's change with the colour foresee the judge's? Over every share of every speaker.
    fit_change = changes_from_start(rows, itemgetter("fit_cosine"))
    judge_change = changes_from_start(rows, lambda s: s["bench"]["normalised"])
    summary["fit_vs_judge_change"] = {
        "correlation": correlation(fit_change, judge_change),
        "same_sign": f"{sum((f > 0) == (j > 0) for f, j in zip(fit_change, judge_change, strict=True))}"
                     f"/{len(fit_change)}",
    }
    if heard_passage:
        # Which of the guard's hearings foresees the benchmark's DNSMOS change with the colour?
        bench_change = changes_from_start(rows, lambda s: s["bench"]["dnsmos_ovrl"])
        summary["guard_vs_bench_dnsmos_change"] = {
            name: correlation(changes_from_start(rows, itemgetter(key)), bench_change)
            for name, key in (("training_renders", "guard_dnsmos"), ("style_guard_passage", "passage_dnsmos"))
        }
    return summary


def main(argv: list[str]) -> None:
    args = parse_replay(argv, __doc__, "colour_likeness", summarise)
    if args is None:
        return

    import torch

    torch.set_num_threads(1)
    from synth import voice_colour
    from synth.engines.kokoro import KokoroEngine
    from synth.fit import nearest_stock_pack, resemblyzer_torch
    from synth.fit.colour_fit import SHARES, dnsmos_quality, measure_colour
    from synth.fit.quality_guard import guard_passage, passage_quality, speak_passage

    started = time.perf_counter()
    chosen, probes = speakers_and_probes(args.voices, args.speakers)
    engine = KokoroEngine(threads=1)
    rows = []
    for speaker in chosen:
        lang, target = enrolled_target(args.voices, speaker)
        voiceprint = np.asarray(target.voiceprint, np.float32) / np.linalg.norm(target.voiceprint)
        fitted = served_style(args.packs, speaker, nearest_stock_pack(target)[1])
        measured = measure_colour(target, fitted.pack, fitted.layers)
        passage = speak_passage(fitted, guard_passage(lang))
        shares: list[Share] = []
        for share in (0.0, *sorted(SHARES)):
            taps = measured.taps(share)
            heard = voice_colour.apply(taps, measured.renders)
            shares.append({
                "share": share,
                "fit_cosine": round(float(np.dot(resemblyzer_torch.embed_numpy(heard), voiceprint)), 4),
                "guard_dnsmos": round(dnsmos_quality(heard), 3),
                "passage_dnsmos": round(passage_quality(voice_colour.apply(taps, passage)), 3),
                "bench": score_output(speak(engine, fitted, lang, taps), probes, speaker),
            })
        rows.append({"speaker": speaker, "shares": shares})
        brief = [(s["share"], s["fit_cosine"], s["guard_dnsmos"], s["bench"]["normalised"]) for s in shares]
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): {brief}", file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": "each share of a served voice's colour: fitting-encoder cosine and guard DNSMOS on the training "
                "renders; judge similarity (0..1 scale), top-1 and DNSMOS on the benchmark's sentences",
        "packs": str(args.packs),
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
