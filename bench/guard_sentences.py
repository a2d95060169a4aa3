"""How many sentences does the style guard need to hear?

The guard (synth/fit/quality_guard.py) keeps a share of the fit when the mean DNSMOS change of its two sentences,
each heard on its own against the start pack's same sentence, is within its tolerance. A voice's change differs
from one sentence to the next, so two sentences estimate it with a standard error of that spread over the root of
two. For every speaker of a voice_similarity run saved with --save-packs, the share its guard kept of the whole fit
(no colour or suppressor: what the guard hears) and its start pack each speak the guard's two sentences and
bench/more_sentences.py's eighteen (the benchmark's three and fifteen held out), each heard as the guard hears it.
Reported per speaker: the change on every sentence, the guard's mean and the eighteen's, and the spread between
sentences; over speakers, the standard error of a two-sentence mean and the sentences a guard would need for 0.05.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/guard_sentences.py --packs DIR --results NAME [--speakers A,B] [--out guard_sentences]
    python bench/guard_sentences.py --merge SHARD1,SHARD2 --out guard_sentences
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import add_results_option, correlation, parse_replay, write_replay  # noqa: E402
from bench.more_sentences import passages  # noqa: E402
from bench.voice_similarity import saved_fits, saved_rows  # noqa: E402

TARGET_STANDARD_ERROR = 0.05  # DNSMOS points: a quarter of the guard's tolerance


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    spread = float(np.median([row["spread_between_sentences"] for row in rows]))
    misjudged = [row["speaker"] for row in rows if abs(row["guard_mean"] - row["mean_of_eighteen"]) > 0.1]
    return {
        "speakers": len(rows),
        "median_spread_between_sentences": round(spread, 3),
        "standard_error_of_two": round(spread / math.sqrt(2), 3),
        f"sentences_for_standard_error_{TARGET_STANDARD_ERROR}": math.ceil((spread / TARGET_STANDARD_ERROR) ** 2),
        "guard_mean_vs_mean_of_eighteen": correlation(np.array([row["guard_mean"] for row in rows]),
                                                      np.array([row["mean_of_eighteen"] for row in rows]))
        if len(rows) > 2 else None,
        "mean_guard_minus_eighteen": round(float(np.mean([row["guard_mean"] - row["mean_of_eighteen"]
                                                          for row in rows])), 3),
        "guard_off_by_more_than_0.1": misjudged,
    }


def speaker_row(speaker: str, kept: list[float], guard_changes: np.ndarray, changes: np.ndarray) -> dict[str, Any]:
    return {
        "speaker": speaker,
        "kept": kept,
        "guard_changes": guard_changes.round(3).tolist(),
        "sentence_changes": changes.round(3).tolist(),
        "guard_mean": round(float(guard_changes.mean()), 3),
        "mean_of_eighteen": round(float(changes.mean()), 3),
        "spread_between_sentences": round(float(changes.std(ddof=1)), 3),
    }


def main(argv: list[str]) -> None:
    args = parse_replay(argv, __doc__, "guard_sentences", summarise, add_results_option)
    if args is None:
        return
    from synth.enroll.contract import FittedStyle
    from synth.fit.quality_guard import guard_passage, served_quality

    started = time.perf_counter()
    rows = []
    for row_in, lang, start, whole in saved_fits(args.packs, saved_rows(args.results, args.speakers)):
        guard_texts = guard_passage(lang)
        texts = guard_texts + [(text, lang) for passage in passages(lang) for text in passage]
        score = served_quality(lang, texts)  # each sentence heard on its own, as the guard hears its two
        style_share, layer_share = row_in["guard"]["kept"]
        kept = whole.share_of_the_way(start, style_share, layer_share)
        change = score(kept) - score(FittedStyle(start))
        rows.append(speaker_row(row_in["speaker"], [style_share, layer_share], change[: len(guard_texts)],
                                change[len(guard_texts) :]))
        print(f"{row_in['speaker']} ({time.perf_counter() - started:.0f} s): guard {rows[-1]['guard_mean']:+.3f}, "
              f"eighteen {rows[-1]['mean_of_eighteen']:+.3f}, spread {rows[-1]['spread_between_sentences']:.3f}",
              file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": "the change from the start pack of the share each speaker's style guard kept, on the guard's two "
                "sentences and on eighteen more, each heard on its own",
        "packs": str(args.packs),
        "results": args.results,
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
