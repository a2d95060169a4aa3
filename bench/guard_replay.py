"""Replay the fit's quality guard on saved whole fits, at several tolerances, without fitting again.

For every speaker of a voice_similarity run made with --save-packs: the start pack and each
(style, layers) share in GUARD_SHARES, scored twice: by the guard (DNSMOS of its passage) and
by the benchmark (judge similarity to the probe, top-1 and DNSMOS of the three evaluation
sentences; no colour). Then each tolerance is replayed: the share the guard would keep, and
what that share scores on the benchmark's sentences. Shows how well the guard's score foresees
the benchmark's and what a tolerance trades.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/guard_replay.py --packs DIR --results NAME [--tolerances 0,0.03,0.05] [--speakers A,B]
    python bench/guard_replay.py --merge SHARD1,SHARD2 --out NAME2    # or one earlier replay, summarised anew
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.voice_similarity import RESULTS, saved_fits, saved_run, score_output, speak  # noqa: E402


def replay(table: list[dict], tolerance: float) -> dict[str, object]:  # type: ignore[type-arg]
    """What a guard with `tolerance` keeps for every speaker (the first clean share, else the start)."""
    kept = []
    for row in table:
        start = row["shares"][0]
        choice = next(
            (c for c in row["shares"][1:] if c["guard_dnsmos"] >= start["guard_dnsmos"] - tolerance), start
        )
        kept.append({"speaker": row["speaker"], "kept": choice["share"], **choice["bench"]})
    return {
        "tolerance": tolerance,
        "mean_normalised": round(float(np.mean([k["normalised"] for k in kept])), 4),
        "top1": f"{sum(bool(k['top1']) for k in kept)}/{len(kept)}",
        "mean_dnsmos_ovrl": round(float(np.mean([k["dnsmos_ovrl"] for k in kept])), 3),
        "start_mean_dnsmos_ovrl": round(float(np.mean([r["shares"][0]["bench"]["dnsmos_ovrl"] for r in table])), 3),
        "kept": kept,
    }


def oracle(table: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    """What no guard can beat: per speaker, the most similar share whose DNSMOS on the benchmark's own sentences
    is no worse than the start's (a guard would have to hear those sentences to choose it)."""
    kept = []
    for row in table:
        start = row["shares"][0]["bench"]["dnsmos_ovrl"]
        clean = [c for c in row["shares"] if c["bench"]["dnsmos_ovrl"] >= start]
        best = max(clean, key=lambda c: c["bench"]["normalised"])
        kept.append({"speaker": row["speaker"], "kept": best["share"], **best["bench"]})
    return {
        "mean_normalised": round(float(np.mean([k["normalised"] for k in kept])), 4),
        "top1": f"{sum(bool(k['top1']) for k in kept)}/{len(kept)}",
        "mean_dnsmos_ovrl": round(float(np.mean([k["dnsmos_ovrl"] for k in kept])), 3),
        "kept": kept,
    }


def mean_frontier(table: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    """What no choice of shares can beat on the mean: the goals compare mean DNSMOS with the stock voices', so
    one speaker may trade quality for likeness where another gives some back. For each weight w, every speaker
    keeps the share (or the start) with the most benchmark similarity + w x benchmark DNSMOS; the points traced
    are the upper edge of what a guard choosing among these shares could reach. Optimistic: it chooses on the
    benchmark's own scores, render-to-render spread included."""
    points: dict[tuple[float, float], dict[str, object]] = {}
    for weight in np.linspace(0.0, 5.0, 201):
        kept = [max(r["shares"], key=lambda c: c["bench"]["normalised"] + weight * c["bench"]["dnsmos_ovrl"])
                for r in table]
        similarity = round(float(np.mean([c["bench"]["normalised"] for c in kept])), 4)
        dnsmos = round(float(np.mean([c["bench"]["dnsmos_ovrl"] for c in kept])), 3)
        points.setdefault((similarity, dnsmos), {
            "weight": round(float(weight), 3),
            "mean_normalised": similarity,
            "top1": f"{sum(bool(c['bench']['top1']) for c in kept)}/{len(kept)}",
            "mean_dnsmos_ovrl": dnsmos,
        })
    start = round(float(np.mean([r["shares"][0]["bench"]["dnsmos_ovrl"] for r in table])), 3)
    clean = [key for key in points if key[1] >= start]
    return {
        "start_mean_dnsmos_ovrl": start,
        "most_similar_as_clean_as_the_start_on_the_mean": points[max(clean)] if clean else None,
        "points": list(points.values()),
    }


def likeness_trade(table: list[dict], weight: float) -> dict[str, object]:  # type: ignore[type-arg]
    """A guard that trades likeness against its own DNSMOS instead of using a tolerance: each speaker keeps the
    share with the most (likeness of that share + weight x its guard DNSMOS change from the start). A guard
    cannot hear the judge, so a share's likeness is its mean benchmark similarity over the other speakers."""
    kept = []
    for row in table:
        others = [r for r in table if r is not row]
        likeness = {
            tuple(c["share"]): np.mean([o["shares"][i]["bench"]["normalised"] for o in others])
            for i, c in enumerate(row["shares"])
        }
        start = row["shares"][0]["guard_dnsmos"]
        choice = max(row["shares"], key=lambda c: likeness[tuple(c["share"])] + weight * (c["guard_dnsmos"] - start))
        kept.append({"speaker": row["speaker"], "kept": choice["share"], **choice["bench"]})
    return {
        "weight": weight,
        "mean_normalised": round(float(np.mean([k["normalised"] for k in kept])), 4),
        "top1": f"{sum(bool(k['top1']) for k in kept)}/{len(kept)}",
        "mean_dnsmos_ovrl": round(float(np.mean([k["dnsmos_ovrl"] for k in kept])), 3),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=Path, help="the --save-packs folder of a voice_similarity run")
    parser.add_argument("--results", help="that run's results name under bench/results/")
    parser.add_argument("--voices", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/voices")
    parser.add_argument("--speakers", default="", help="comma-separated subset (default: all in the results)")
    parser.add_argument("--tolerances", default="0,0.02,0.05")
    parser.add_argument("--out", default="guard_replay")
    parser.add_argument("--merge", default="", help="comma-separated shard names (runs of this script) to merge")
    args = parser.parse_args(argv)
    if args.merge:
        shards = [json.loads((RESULTS / f"{name}.json").read_text()) for name in args.merge.split(",")]
        table = sorted((row for shard in shards for row in shard["speakers"]), key=lambda r: r["speaker"])
        write(summarise(table, args.tolerances, shards[0]["results"]), args.out)
        return
    if args.packs is None or args.results is None:
        parser.error("--packs and --results are needed, unless --merge summarises earlier replays")

    rows, probes, engine = saved_run(args.results, args.voices, args.speakers)
    from synth.fit.quality_guard import served_quality
    from synth.fit.style_fit import GUARD_SHARES

    table = []
    for row, lang, start_pack, offered in saved_fits(args.packs, rows):
        speaker = row["speaker"]
        guard_score = served_quality(lang)
        shares = []
        for style_share, layer_share in ((0.0, 0.0), *GUARD_SHARES):
            candidate = offered.share_of_the_way(start_pack, style_share, layer_share)
            bench = score_output(speak(engine, candidate, lang), probes, speaker)
            shares.append({
                "share": [style_share, layer_share],
                "guard_dnsmos": round(guard_score(candidate), 3),
                "bench": bench,
            })
        table.append({"speaker": speaker, "stock_voice": row["stock_voice"], "shares": shares})
        print(json.dumps(table[-1]), flush=True)

    write(summarise(table, args.tolerances, args.results), args.out)


def summarise(table: list[dict], tolerances: str, results: str) -> dict[str, Any]:  # type: ignore[type-arg]
    from synth.fit.style_fit import GUARD_SHARES

    guard = np.array([c["guard_dnsmos"] - r["shares"][0]["guard_dnsmos"] for r in table for c in r["shares"][1:]])
    bench = np.array([
        c["bench"]["dnsmos_ovrl"] - r["shares"][0]["bench"]["dnsmos_ovrl"] for r in table for c in r["shares"][1:]
    ])
    return {
        "results": results,
        "guard_shares": GUARD_SHARES,
        # How well the guard's DNSMOS change (share vs start) foresees the benchmark's on other sentences.
        "guard_vs_bench_dnsmos_change": {
            "correlation": round(float(np.corrcoef(guard, bench)[0, 1]), 3),
            "mean_guard_change": round(float(guard.mean()), 3),
            "mean_bench_change": round(float(bench.mean()), 3),
        },
        "policies": [replay(table, float(t)) for t in tolerances.split(",")],
        "best_share_sounding_as_clean_on_the_benchmark": oracle(table),
        "mean_frontier": mean_frontier(table),
        "likeness_trade": [likeness_trade(table, w) for w in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)],
        "speakers": table,
    }


def write(result: dict[str, Any], out: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "speakers"} | {
        "policies": [{k: v for k, v in p.items() if k != "kept"} for p in result["policies"]],
        "best_share_sounding_as_clean_on_the_benchmark": {
            k: v for k, v in result["best_share_sounding_as_clean_on_the_benchmark"].items() if k != "kept"
        },
        "mean_frontier": result["mean_frontier"],
        "likeness_trade": result["likeness_trade"],
    }, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
