"""Which decoder layers carry a fitted voice's likeness, and which its loss of quality? Replayed on saved fits.

The per-layer timbre (synth.engines.kokoro_layers) can move all 58 AdaIN layers; a whole fit of them is
much closer to the speaker than what the quality guard keeps, and scores lower on DNSMOS. Here every saved
whole fit (voice_similarity --save-packs) is served with its fitted style and the per-layer timbre of
some layer groups only (the others at zero), and each variant is scored by the benchmark (judge
similarity to the probe, top-1, DNSMOS P.835 and P.808 of the three evaluation sentences, no colour)
and by the fit's guard (DNSMOS of its own passage). If one group holds most of the likeness and
another most of the damage, a fit or a guard can keep the one and drop the other.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/layer_groups.py --packs DIR --results NAME [--speakers A,B] --out OUT
    python bench/layer_groups.py --merge OUT1,OUT2 --out OUT
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.voice_similarity import RESULTS, saved_fits, saved_run, score_output, speak  # noqa: E402
from synth.engines.kokoro_layers import LAYER_GROUPS  # noqa: E402

# Each variant: the layer groups whose fitted timbre is kept (style always fitted, except "start").
VARIANTS: dict[str, tuple[str, ...] | None] = {
    "start": None,
    "style_only": (),
    "all_layers": tuple(LAYER_GROUPS),
    **{f"only_{group}": (group,) for group in LAYER_GROUPS},
    **{f"all_but_{group}": tuple(g for g in LAYER_GROUPS if g != group) for group in LAYER_GROUPS},
}


def masked(layers: np.ndarray, groups: tuple[str, ...]) -> np.ndarray | None:
    if not groups:
        return None
    keep = np.zeros(len(layers), bool)
    for group in groups:
        keep[list(LAYER_GROUPS[group])] = True
    return np.where(keep[:, None], layers, 0.0).astype(np.float32)


def summarise(table: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    summary = {}
    for name in VARIANTS:
        scores = [row["variants"][name] for row in table]
        summary[name] = {
            "mean_normalised": round(float(np.mean([s["normalised"] for s in scores])), 4),
            "top1": f"{sum(bool(s['top1']) for s in scores)}/{len(scores)}",
            "mean_dnsmos_ovrl": round(float(np.mean([s["dnsmos_ovrl"] for s in scores])), 3),
            "mean_dnsmos_p808": round(float(np.mean([s["dnsmos_p808"] for s in scores])), 3),
            "mean_guard_dnsmos": round(float(np.mean([s["guard_dnsmos"] for s in scores])), 3),
        }
    return {"groups": {g: [min(r), max(r)] for g, r in LAYER_GROUPS.items()}, "summary": summary,
            "speakers": table}


def write(result: dict[str, object], out: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["summary"], indent=2))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=Path, help="the --save-packs folder of a voice_similarity run")
    parser.add_argument("--results", help="that run's results name under bench/results/")
    parser.add_argument("--voices", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/voices")
    parser.add_argument("--speakers", default="", help="comma-separated subset (default: all in the results)")
    parser.add_argument("--out", default="layer_groups")
    parser.add_argument("--merge", default="", help="comma-separated runs of this script to merge into --out")
    args = parser.parse_args(argv)
    if args.merge:
        shards = [json.loads((RESULTS / f"{name}.json").read_text()) for name in args.merge.split(",")]
        write(summarise(sorted((r for s in shards for r in s["speakers"]), key=lambda r: r["speaker"])), args.out)
        return
    if args.packs is None or args.results is None:
        parser.error("--packs and --results are needed unless --merge is given")

    rows, probes, engine = saved_run(args.results, args.voices, args.speakers)
    from synth.enroll.contract import FittedStyle
    from synth.fit.quality_guard import served_quality

    table = []
    for row, lang, start_pack, offered in saved_fits(args.packs, rows):
        speaker = row["speaker"]
        layers = offered.layers
        if layers is None:
            continue
        guard_score = served_quality(lang)
        variants = {}
        for name, groups in VARIANTS.items():
            fitted = FittedStyle(start_pack) if groups is None else FittedStyle(offered.pack, masked(layers, groups))
            scores = score_output(speak(engine, fitted, lang), probes, speaker)
            scores["guard_dnsmos"] = [round(float(q), 3) for q in guard_score(fitted)]  # each guard sentence
            variants[name] = scores
        table.append({"speaker": speaker, "stock_voice": row["stock_voice"], "variants": variants})
        print(json.dumps(table[-1]), flush=True)
    write(summarise(table), args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
