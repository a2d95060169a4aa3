"""Which half of the fitted style costs the quality? Timbre, prosody and per-layer timbre served in separate shares.

Kokoro's 256-number style is two halves read by different parts of the engine: the first 128 by the decoder
(timbre), the last 128 by the duration and pitch predictor (prosody). The fit moves both, and its quality guard
scales them together (with the per-layer timbre in its own share: GUARD_SHARES). For every speaker of a
voice_similarity run saved with --save-packs, this serves the whole fit's timbre half, prosody half and per-layer
timbre in several shares each (VARIANTS, no colour, no suppressor) and scores each on the benchmark's sentences
(judge similarity, top-1, P.835 and its SIG and BAK, P.808) and, as the quality guard hears it, on the guard's
passage. Then the guard is replayed with other lists of shares to try (GUARD_ORDERS; it keeps the first within
its tolerance of the start on its passage), and the mean frontier (bench/guard_replay.py: optimistic, chosen on
the benchmark's own scores) of the guard's shares alone and with these: would a guard that scaled the halves apart
reach points the guard's shares cannot?

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/style_halves.py --packs DIR --results NAME [--speakers A,B] [--out style_halves]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_results_option, parse_replay, write_replay  # noqa: E402
from bench.guard_replay import mean_frontier, replay  # noqa: E402
from bench.voice_similarity import saved_fits, saved_run, score_output, speak  # noqa: E402
from synth.fit.quality_guard import TOLERANCE  # noqa: E402

TIMBRE = slice(0, 128)  # the style's half the decoder reads
PROSODY = slice(128, 256)  # the half the duration and pitch predictor reads
# name: (share of the timbre half's offset, of the prosody half's, of the per-layer timbre). The guard's own
# shares (style, layers) are the variants whose two style shares are equal.
VARIANTS = {
    "start": (0.0, 0.0, 0.0),
    "whole": (1.0, 1.0, 1.0),
    "guard_0.6_0.6": (0.6, 0.6, 0.6),
    "guard_1_0": (1.0, 1.0, 0.0),
    "guard_0.3_0.3": (0.3, 0.3, 0.3),
    "guard_0.6_0": (0.6, 0.6, 0.0),
    "guard_0.3_0": (0.3, 0.3, 0.0),
    "prosody_none": (1.0, 0.0, 1.0),
    "prosody_half": (1.0, 0.5, 1.0),
    "timbre_none": (0.0, 1.0, 1.0),
    "style_timbre_only": (1.0, 0.0, 0.0),
    "style_prosody_only": (0.0, 1.0, 0.0),
    "style_prosody_half": (1.0, 0.5, 0.0),
    "prosody_none_layers_0.6": (1.0, 0.0, 0.6),
    "timbre_0.6_prosody_none_layers_0.6": (0.6, 0.0, 0.6),
}
SCORES = ("normalised", "top1", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
_SERVED_ORDER = ["whole", "guard_0.6_0.6", "guard_1_0", "guard_0.3_0.3", "guard_0.6_0", "guard_0.3_0"]
# Each of the served shares followed by its twin with the prosody half left at the start's.
_PROSODY_TWINS = ["whole", "prosody_none", "guard_0.6_0.6", "timbre_0.6_prosody_none_layers_0.6", "guard_1_0",
                  "style_timbre_only", "guard_0.3_0.3", "guard_0.6_0", "guard_0.3_0"]
# Never the fitted prosody half.
_PROSODY_FREE = ["prosody_none", "prosody_none_layers_0.6", "timbre_0.6_prosody_none_layers_0.6", "style_timbre_only"]
# The served list, its style-only share without the fitted prosody half.
_STYLE_ONLY_PROSODY_FREE = [name if name != "guard_1_0" else "style_timbre_only" for name in _SERVED_ORDER]
# Lists of shares the guard may try, by the recording's language.
GUARD_ORDERS = {
    "served": {"en": _SERVED_ORDER, "zh": _SERVED_ORDER},
    "prosody_twins": {"en": _PROSODY_TWINS, "zh": _PROSODY_TWINS},
    "prosody_twins_mandarin_only": {"en": _SERVED_ORDER, "zh": _PROSODY_TWINS},
    "mandarin_prosody_none_first": {
        "en": _SERVED_ORDER,
        "zh": ["prosody_none", "timbre_0.6_prosody_none_layers_0.6", "style_timbre_only", *_SERVED_ORDER[1:]],
    },
    "prosody_free": {lang: _PROSODY_FREE for lang in ("en", "zh")},
    "style_only_share_prosody_free": {lang: _STYLE_ONLY_PROSODY_FREE for lang in ("en", "zh")},
}
# Pairs (prosody half left at the start's, the same share with it fitted) compared speaker by speaker.
PROSODY_PAIRS = (("prosody_none", "whole"), ("timbre_0.6_prosody_none_layers_0.6", "guard_0.6_0.6"),
                 ("style_timbre_only", "guard_1_0"))


def mixed(start_pack: np.ndarray, fit: Any, timbre: float, prosody: float, layers: float) -> Any:
    """The start pack moved `timbre` of the way to the fit's timbre half and `prosody` of the way to its prosody
    half, with `layers` of its per-layer timbre."""
    from synth.enroll.contract import FittedStyle

    pack = start_pack.astype(np.float32)
    for half, share in ((TIMBRE, timbre), (PROSODY, prosody)):
        pack[..., half] += share * (fit.pack[..., half] - start_pack[..., half])
    kept_layers = None if fit.layers is None or layers == 0.0 else (layers * fit.layers).astype(np.float32)
    return FittedStyle(pack, kept_layers)


def as_replay_table(rows: list[dict[str, Any]], names: Callable[[str], list[str]]) -> list[dict[str, Any]]:
    """The rows as bench/guard_replay.py's table: per speaker, the start and then the variants `names(language)`
    in the order a guard would try them."""
    return [
        {"speaker": r["speaker"], "shares": [
            {"share": n, "guard_dnsmos": r["variants"][n]["guard_dnsmos"], "bench": r["variants"][n]}
            for n in ["start", *names(r["speaker"].split("_", 1)[0])]
        ]}
        for r in rows
    ]


def replay_guard(rows: list[dict[str, Any]], order: dict[str, list[str]]) -> dict[str, Any]:
    """What the guard (at its own tolerance) keeps when it tries `order`'s shares for each speaker's language."""
    result = replay(as_replay_table(rows, order.__getitem__), TOLERANCE)
    kept = {k["speaker"]: k["kept"] for k in cast(list[dict[str, Any]], result["kept"])}
    return {k: v for k, v in result.items() if k != "kept"} | {"kept": kept}


def paired(rows: list[dict[str, Any]], free: str, fitted: str) -> dict[str, Any]:
    """Speaker by speaker, what leaving the prosody half at the start's changes in a share: the mean change of
    similarity and P.835, on how many speakers P.835 rose, and the mean P.835 change without the largest one."""
    similarity = np.array([r["variants"][free]["normalised"] - r["variants"][fitted]["normalised"] for r in rows])
    quality = np.array([r["variants"][free]["dnsmos_ovrl"] - r["variants"][fitted]["dnsmos_ovrl"] for r in rows])
    largest = int(np.argmax(np.abs(quality)))
    return {
        "mean_similarity_change": round(float(similarity.mean()), 4),
        "mean_dnsmos_ovrl_change": round(float(quality.mean()), 3),
        "dnsmos_ovrl_rose": f"{int((quality > 0).sum())}/{len(rows)}",
        "largest_change": {"speaker": rows[largest]["speaker"], "dnsmos_ovrl": round(float(quality[largest]), 3)},
        "mean_dnsmos_ovrl_change_without_it": round(float(np.delete(quality, largest).mean()), 3),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    means = {
        name: {
            "mean_normalised": round(float(np.mean([r["variants"][name]["normalised"] for r in rows])), 4),
            "top1": f"{sum(bool(r['variants'][name]['top1']) for r in rows)}/{len(rows)}",
            **{f"mean_{score}": round(float(np.mean([r["variants"][name][score] for r in rows])), 3)
               for score in SCORES[2:]},
        }
        for name in VARIANTS
    }

    guard_shares = mean_frontier(as_replay_table(rows, lambda lang: _SERVED_ORDER))
    with_halves = mean_frontier(as_replay_table(rows, lambda lang: [n for n in VARIANTS if n != "start"]))
    return {
        "speakers": len(rows),
        "variants": means,
        "prosody_left_at_start": {f"{free} vs {fitted}": paired(rows, free, fitted) for free, fitted in PROSODY_PAIRS},
        "guard_orders": {name: replay_guard(rows, order) for name, order in GUARD_ORDERS.items()},
        # Upper edges of what a choice among shares reaches on the mean (chosen on the benchmark's own scores, so
        # optimistic for both); at the start's mean P.835, the most similar choice of each.
        "frontier_guard_shares": guard_shares["most_similar_as_clean_as_the_start_on_the_mean"],
        "frontier_with_separate_halves": with_halves["most_similar_as_clean_as_the_start_on_the_mean"],
        "frontiers": {"guard_shares": guard_shares["points"], "with_separate_halves": with_halves["points"]},
    }


def main(argv: list[str]) -> None:
    args = parse_replay(argv, __doc__, "style_halves", summarise, add_results_option)
    if args is None:
        return
    started = time.perf_counter()
    rows_in, probes, engine = saved_run(args.results, args.voices, args.speakers)
    from synth.fit.quality_guard import guard_passage, passage_quality, served_quality, speak_passage

    rows = []
    for row, lang, start_pack, offered in saved_fits(args.packs, rows_in):
        speaker = row["speaker"]
        served_quality(lang)  # loads the engine and DNSMOS, as the guard does before its first score
        variants = {}
        for name, shares in VARIANTS.items():
            candidate = mixed(start_pack, offered, *shares)
            scores = score_output(speak(engine, candidate, lang), probes, speaker)
            variants[name] = {score: scores[score] for score in SCORES}
            variants[name]["guard_dnsmos"] = round(passage_quality(speak_passage(candidate, guard_passage(lang))), 3)
        rows.append({"speaker": speaker, "stock_voice": row["stock_voice"], "variants": variants})
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): " + ", ".join(
            f"{name} {v['normalised']:.2f}/{v['dnsmos_ovrl']:.2f}" for name, v in variants.items()),
            file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": "the whole fit's timbre half, prosody half and per-layer timbre served in separate shares, scored "
                "on the benchmark's sentences (no colour, no suppressor)",
        "packs": str(args.packs),
        "results": args.results,
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
