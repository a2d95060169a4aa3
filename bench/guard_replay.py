"""Replay the fit's quality guard on saved whole fits, at several tolerances, without fitting again.

For every speaker of a voice_similarity run made with --save-packs: the start pack and each
(style, layers) share in GUARD_SHARES, scored twice: by the guard as it was until s30 (DNSMOS of one
window of its passage; --each-sentence adds the guards that hear each sentence on its own) and
by the benchmark (judge similarity to the probe, top-1 and DNSMOS of the three evaluation
sentences; no colour). Then each tolerance is replayed: the share the guard would keep, and
what that share scores on the benchmark's sentences. Shows how well the guard's score foresees
the benchmark's and what a tolerance trades.

--second-passage also scores every share on a second passage of about 9 s (two more sentences, in neither the
fit, the guard nor the benchmark): would a guard that hears two windows, or a second one only when its first
verdict is close, foresee the benchmark better than the guard's one window?

--each-sentence also scores each sentence of the guard's passage (and, with --second-passage, of the second passage)
on its own, repeated to fill one DNSMOS window: a fit can spoil some sentences and not others (zh_S0764 in
voice_similarity_s29: -0.27 on two of the benchmark's sentences, -0.07 and +0.05 on the guard's two, which
heard the pair as a whole at +0.04). Policies `each_sentence` (the guard of s30: a share is clean when none of the
guard's two sentences falls more than the tolerance below the start's same sentence), `mean_of_sentences` (the guard
since s31: the mean of those two changes is within the tolerance) and `each_of_four` (as `each_sentence`, over both
passages' four).

--finer-shares also scores the shares in FINER_SHARES, between the served list's steps, and replays the share lists in
SHARE_LISTS with the guards that hear each sentence: where the whole fit fails, would a guard that steps the layers down
before the style keep more of the likeness (en_3331 in voice_similarity_s30_each kept the style without the layers and
missed top-1 by 0.016, while its whole fit was top-1)?

--more-sentences also scores every share on bench/more_sentences.py's five more passages of three held-out sentences,
spoken and scored like the benchmark's three ("bench_more": the mean over all six passages): three sentences judge a
share's P.835 only roughly (a fit moved a hair moves it by a median SD of about 0.06, dnsmos_sensitivity_s35.json),
so each policy is also replayed against eighteen sentences, as are the best share and the frontier below.

--more-guard-sentences also scores each share on quality_guard.GUARD_MORE_SENTENCES' four, each on its own like the
guard's two: a two-sentence mean judges a share's change with a standard error of about 0.135 (guard_sentences_s37).
Policies `mean_of_4` and `mean_of_6` (the served guard's rule, the mean of the changes, over its two and the first two
or all four more), and `six_near_the_line` (the served two decide, unless their mean is within MORE_LOOK_MARGIN of the
line: then all six, the start's four more heard once). Each policy's `guard_sentences_heard` is what it would cost.

--level-matched also scores every share with its output brought to the start's loudness (BS.1770, bench/loudness.py;
one gain per share, measured on the guard's passage, as a served voice would carry it): the fits move the level by
a few dB, and DNSMOS P.835 moves with the level. Policy `level_matched`: the guard and the benchmark both hear the
matched output.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/guard_replay.py --packs DIR --results NAME [--tolerances 0,0.03,0.05] [--speakers A,B]
                                 [--second-passage] [--each-sentence] [--finer-shares] [--level-matched]
                                 [--more-sentences] [--more-guard-sentences]
    python bench/guard_replay.py --merge SHARD1,SHARD2 --out NAME2    # or one earlier replay, summarised anew
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import changes_from_start, correlation  # noqa: E402
from bench.voice_similarity import RESULTS, saved_fits, saved_run, score_output, speak  # noqa: E402
from synth.fit.quality_guard import GUARD_MORE_SENTENCES  # noqa: E402

# Two sentences the fit, the guard's own passage and the benchmark never say: a second window for the guard (the
# first two a guard told to hear more sentences adds).
SECOND_PASSAGE = {lang: sentences[:2] for lang, sentences in GUARD_MORE_SENTENCES.items()}
# Shares between the served list's steps (GUARD_SHARES), as (share of the style, share of the per-layer timbre).
FINER_SHARES = ((1.0, 0.6), (1.0, 0.3), (0.8, 0.8), (0.6, 0.3))
# Orders a guard could try the shares in, each ending where the served list ends. The served list tries the style
# without the layers third; these step the layers down first, more finely.
SHARE_LISTS = {
    "layers_first": ((1.0, 1.0), (1.0, 0.6), (1.0, 0.3), (1.0, 0.0), (0.6, 0.6), (0.6, 0.3), (0.6, 0.0), (0.3, 0.3),
                     (0.3, 0.0)),
    "finer": ((1.0, 1.0), (0.8, 0.8), (1.0, 0.6), (0.6, 0.6), (1.0, 0.3), (1.0, 0.0), (0.3, 0.3), (0.6, 0.0),
              (0.3, 0.0)),
    # As many tries as the served list (so the same guard reserve): (1.0, 0.6) in place of (0.6, 0.0).
    "six_layers_first": ((1.0, 1.0), (1.0, 0.6), (0.6, 0.6), (1.0, 0.0), (0.3, 0.3), (0.3, 0.0)),
}
# A first verdict this close to the line (DNSMOS points) asks for the second window, in the sequential policy.
SECOND_LOOK_MARGIN = 0.05
# A two-sentence verdict this close to the line asks for four more sentences: one standard error of a two-sentence
# mean's change (a voice's change spreads by a median SD of 0.191 between sentences, guard_sentences_s37.json).
MORE_LOOK_MARGIN = 0.135


Share = dict[str, Any]  # one share's scores: "share", "guard_dnsmos" (and "guard_dnsmos_b"), "bench"
Clean = Callable[[Share, Share, float], bool]  # (start, share, tolerance): does the guard find the share clean?


def both_windows(share: Share) -> float:
    return (share["guard_dnsmos"] + share["guard_dnsmos_b"]) / 2


def clean_on_both_windows(start: Share, share: Share, tolerance: float) -> bool:
    return both_windows(share) >= both_windows(start) - tolerance


def close_to_the_line(start: Share, share: Share, tolerance: float) -> bool:
    """A first verdict within SECOND_LOOK_MARGIN of the line: the sequential guard hears the second window."""
    return abs(share["guard_dnsmos"] - (start["guard_dnsmos"] - tolerance)) < SECOND_LOOK_MARGIN


def clean_sequentially(start: Share, share: Share, tolerance: float) -> bool:
    """The first window decides, unless it is close to the line; then both windows, against both of the start's."""
    if close_to_the_line(start, share, tolerance):
        return clean_on_both_windows(start, share, tolerance)
    return clean_on_one_window(start, share, tolerance)


def clean_on_one_window(start: Share, share: Share, tolerance: float) -> bool:
    """The guard until s30: one window of its passage, within `tolerance` of the start's (`clean_on_mean_of_sentences`
    is the guard as it runs now)."""
    return share["guard_dnsmos"] >= start["guard_dnsmos"] - tolerance


def clean_on_each_sentence(start: Share, share: Share, tolerance: float) -> bool:
    """The guard of s30: its two sentences heard one by one (served_quality), none more than `tolerance` below the
    start's same sentence."""
    return worst_sentence(start, share, ("guard_each",)) >= -tolerance


def heard_changes(start: Share, share: Share, count: int) -> list[float]:
    """A share's change from the start on each of the first `count` sentences a guard hears: its two, then the four
    of --more-guard-sentences."""
    heard = share["guard_each"] + share.get("guard_each_more", [])
    start_heard = start["guard_each"] + start.get("guard_each_more", [])
    if count > len(heard):
        raise ValueError(f"{count} sentences asked for, {len(heard)} heard: replay with --more-guard-sentences")
    return [s - b for s, b in zip(heard[:count], start_heard[:count], strict=True)]


def clean_on_mean_of(count: int) -> Clean:
    """The served guard's rule (the mean of the sentences' changes within the tolerance) over `count` sentences."""
    from synth.fit.quality_guard import sounds_clean

    def clean(start: Share, share: Share, tolerance: float) -> bool:
        return sounds_clean(heard_changes(start, share, count), tolerance)

    return clean


# The guard as it runs since s31 (quality_guard.keep_first_clean): its two sentences heard one by one, judged on the
# mean of their changes from the start's same sentences.
clean_on_mean_of_sentences = clean_on_mean_of(2)


def needs_more_sentences(start: Share, share: Share, tolerance: float) -> bool:
    """The served two sentences' verdict is within MORE_LOOK_MARGIN of the line."""
    return abs(float(np.mean(heard_changes(start, share, 2))) + tolerance) < MORE_LOOK_MARGIN


def clean_on_six_near_the_line(start: Share, share: Share, tolerance: float) -> bool:
    """The served two sentences decide, unless their verdict is close to the line; then all six."""
    count = 6 if needs_more_sentences(start, share, tolerance) else 2
    return clean_on_mean_of(count)(start, share, tolerance)


def clean_on_each_of_four(start: Share, share: Share, tolerance: float) -> bool:
    """Both passages' four sentences heard one by one: none may fall more than `tolerance` below the start's."""
    return worst_sentence(start, share, ("guard_each", "guard_each_b")) >= -tolerance


def worst_sentence(start: Share, share: Share, keys: tuple[str, ...]) -> float:
    """The largest fall of one sentence (of the passages under `keys`) from the start's same sentence."""
    return min(s - b for key in keys for s, b in zip(share[key], start[key], strict=True))


def worst_changes(table: list[dict], keys: tuple[str, ...]) -> np.ndarray:  # type: ignore[type-arg]
    """For every share of every speaker: its worst sentence's change from the start (sentences under `keys`)."""
    return np.array([worst_sentence(row["shares"][0], share, keys) for row in table for share in row["shares"][1:]])


def clean_at_matched_level(start: Share, share: Share, tolerance: float) -> bool:
    """One window, the share brought to the start's loudness before DNSMOS hears it."""
    return share["guard_dnsmos_matched"] >= start["guard_dnsmos_matched"] - tolerance


def candidates(row: dict, order: tuple[tuple[float, float], ...] | None) -> list[Share]:  # type: ignore[type-arg]
    """The shares a guard tries, in turn: the served list (GUARD_SHARES, as scored), or `order` (which may take
    shares from FINER_SHARES)."""
    if order is None:
        return row["shares"][1:]  # type: ignore[no-any-return]
    by_share = {tuple(c["share"]): c for c in row["shares"] + row.get("finer_shares", [])}
    return [by_share[share] for share in order]


def replay(
    table: list[dict], tolerance: float, clean: Clean = clean_on_one_window, guard: str = "guard_dnsmos",  # type: ignore[type-arg]
    bench: str = "bench", order: tuple[tuple[float, float], ...] | None = None,
) -> dict[str, object]:
    """What a guard with `tolerance` keeps for every speaker (the first share it finds clean, else the start), and
    how the kept share scores on the benchmark (`bench`: the key of the scores the benchmark gave it). `order`:
    the shares to try, if not the served list."""
    kept = []
    for row in table:
        start = row["shares"][0]
        tried = candidates(row, order)
        found = next((i for i, c in enumerate(tried) if clean(start, c, tolerance)), None)
        choice = start if found is None else tried[found]
        kept.append({"speaker": row["speaker"], "kept": choice["share"], "tried": len(tried) if found is None else
                     found + 1, "dnsmos_change": round(choice[bench]["dnsmos_ovrl"] - start[bench]["dnsmos_ovrl"], 3),
                     **choice[bench]})
    return {
        "guard": guard,
        "tolerance": tolerance,
        "mean_normalised": round(float(np.mean([k["normalised"] for k in kept])), 4),
        "top1": f"{sum(bool(k['top1']) for k in kept)}/{len(kept)}",
        "mean_dnsmos_ovrl": round(float(np.mean([k["dnsmos_ovrl"] for k in kept])), 3),
        "mean_dnsmos_p808": round(float(np.mean([k["dnsmos_p808"] for k in kept])), 3),
        "start_mean_dnsmos_ovrl": round(float(np.mean([r["shares"][0][bench]["dnsmos_ovrl"] for r in table])), 3),
        # The voices that pay for the mean: kept shares more than 0.05 below their start on this measure.
        "more_than_0.05_below_start": [k["speaker"] for k in kept if k["dnsmos_change"] < -0.05],
        "kept": kept,
    }


def oracle(table: list[dict], bench: str = "bench") -> dict[str, object]:  # type: ignore[type-arg]
    """What no guard can beat: per speaker, the most similar share whose DNSMOS on the benchmark's own sentences
    (`bench`: the key of those scores) is no worse than the start's (a guard would have to hear them to choose it)."""
    kept = []
    for row in table:
        start = row["shares"][0][bench]["dnsmos_ovrl"]
        clean = [c for c in row["shares"] if c[bench]["dnsmos_ovrl"] >= start]
        best = max(clean, key=lambda c: c[bench]["normalised"])
        kept.append({"speaker": row["speaker"], "kept": best["share"], **best[bench]})
    return {
        "mean_normalised": round(float(np.mean([k["normalised"] for k in kept])), 4),
        "top1": f"{sum(bool(k['top1']) for k in kept)}/{len(kept)}",
        "mean_dnsmos_ovrl": round(float(np.mean([k["dnsmos_ovrl"] for k in kept])), 3),
        "kept": kept,
    }


def mean_frontier(table: list[dict], bench: str = "bench") -> dict[str, object]:  # type: ignore[type-arg]
    """What no choice of shares can beat on the mean: the goals compare mean DNSMOS with the stock voices', so
    one speaker may trade quality for likeness where another gives some back. For each weight w, every speaker
    keeps the share (or the start) with the most benchmark similarity + w x benchmark DNSMOS; the points traced
    are the upper edge of what a guard choosing among these shares could reach. Optimistic: it chooses on the
    benchmark's own scores (`bench`: their key), render-to-render spread included."""
    points: dict[tuple[float, float], dict[str, object]] = {}
    for weight in np.linspace(0.0, 5.0, 201):
        kept = [max(r["shares"], key=lambda c: c[bench]["normalised"] + weight * c[bench]["dnsmos_ovrl"])
                for r in table]
        similarity = round(float(np.mean([c[bench]["normalised"] for c in kept])), 4)
        dnsmos = round(float(np.mean([c[bench]["dnsmos_ovrl"] for c in kept])), 3)
        points.setdefault((similarity, dnsmos), {
            "weight": round(float(weight), 3),
            "mean_normalised": similarity,
            "top1": f"{sum(bool(c[bench]['top1']) for c in kept)}/{len(kept)}",
            "mean_dnsmos_ovrl": dnsmos,
        })
    start = round(float(np.mean([r["shares"][0][bench]["dnsmos_ovrl"] for r in table])), 3)
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
    parser.add_argument("--second-passage", action="store_true", help="also score every share on SECOND_PASSAGE")
    parser.add_argument("--each-sentence", action="store_true",
                        help="also score each sentence of the passages on its own window")
    parser.add_argument("--level-matched", action="store_true",
                        help="also score every share brought to the start's loudness")
    parser.add_argument("--more-sentences", action="store_true",
                        help="also score every share like the benchmark on bench/more_sentences.py's passages")
    parser.add_argument("--more-guard-sentences", action="store_true",
                        help="also score each share on quality_guard.GUARD_MORE_SENTENCES, each on its own")
    parser.add_argument("--finer-shares", action="store_true",
                        help="also score FINER_SHARES and replay SHARE_LISTS (needs --each-sentence)")
    args = parser.parse_args(argv)
    if args.merge:
        shards = [json.loads((RESULTS / f"{name}.json").read_text()) for name in args.merge.split(",")]
        table = sorted((row for shard in shards for row in shard["speakers"]), key=lambda r: r["speaker"])
        write(summarise(table, args.tolerances, shards[0]["results"]), args.out)
        return
    if args.packs is None or args.results is None:
        parser.error("--packs and --results are needed, unless --merge summarises earlier replays")
    if args.finer_shares and not args.each_sentence:
        parser.error("--finer-shares replays the guard that hears each sentence: add --each-sentence")
    if args.more_guard_sentences and not args.each_sentence:
        parser.error("--more-guard-sentences adds to the guard's two sentences heard one by one: add --each-sentence")

    rows, probes, engine = saved_run(args.results, args.voices, args.speakers)
    from bench.loudness import matching_gain
    from synth.fit.quality_guard import (
        MOST_GUARD_SENTENCES,
        guard_passage,
        join_sentences,
        passage_quality,
        served_quality,
        speak_sentences,
    )
    from synth.fit.style_fit import GUARD_SHARES

    table = []
    for row, lang, start_pack, offered in saved_fits(args.packs, rows):
        speaker = row["speaker"]
        served_quality(lang)  # loads the engine and DNSMOS, as the guard does before its first score
        passage_lang = lang if lang in SECOND_PASSAGE else "ja"
        second_passage = [(text, passage_lang) for text in SECOND_PASSAGE[passage_lang]]
        shares: list[Share] = []
        for style_share, layer_share in ((0.0, 0.0), *GUARD_SHARES):
            candidate = offered.share_of_the_way(start_pack, style_share, layer_share)
            bench_audio = speak(engine, candidate, lang)
            sentences = speak_sentences(candidate, guard_passage(lang))
            passage = join_sentences(sentences)
            shares.append({
                "share": [style_share, layer_share],
                **guard_hearing(sentences, args.each_sentence),
                "bench": score_output(bench_audio, probes, speaker),
            })
            if args.more_sentences:
                shares[-1]["bench_more"] = on_more_sentences(engine, candidate, lang, probes, speaker,
                                                             shares[-1]["bench"])
            if args.more_guard_sentences:
                more = speak_sentences(candidate, guard_passage(lang, MOST_GUARD_SENTENCES)[2:])
                shares[-1]["guard_each_more"] = [round(passage_quality(sentence), 3) for sentence in more]
            if args.second_passage:
                second = guard_hearing(speak_sentences(candidate, second_passage), args.each_sentence)
                shares[-1] |= {f"{key}_b": heard for key, heard in second.items()}  # guard_dnsmos_b, guard_each_b
            if args.level_matched:
                if not shares[1:]:
                    start_passage, start_bench_audio = passage, bench_audio
                gain = matching_gain(passage, start_passage)
                shares[-1] |= {
                    "gain_db": round(20 * float(np.log10(gain)), 2),
                    # What the benchmark's own sentences would have needed: does the passage's gain carry over?
                    "bench_gain_db": round(20 * float(np.log10(matching_gain(bench_audio, start_bench_audio))), 2),
                    "guard_dnsmos_matched": round(passage_quality(np.clip(passage * gain, -1, 1)), 3),
                    "bench_matched": score_output(np.clip(bench_audio * gain, -1, 1), probes, speaker),
                }
        table.append({"speaker": speaker, "stock_voice": row["stock_voice"], "shares": shares})
        if args.finer_shares:  # what the served guard and the benchmark hear of each share between the steps
            table[-1]["finer_shares"] = []
            for style_share, layer_share in FINER_SHARES:
                candidate = offered.share_of_the_way(start_pack, style_share, layer_share)
                table[-1]["finer_shares"].append({
                    "share": [style_share, layer_share],
                    **guard_hearing(speak_sentences(candidate, guard_passage(lang)), each_sentence=True),
                    "bench": score_output(speak(engine, candidate, lang), probes, speaker),
                })
        print(json.dumps(table[-1]), flush=True)

    write(summarise(table, args.tolerances, args.results), args.out)


def on_more_sentences(engine: Any, candidate: Any, lang: str, probes: dict[str, np.ndarray], speaker: str,
                      bench: dict[str, Any]) -> dict[str, Any]:
    """A share's benchmark scores over six passages: the benchmark's own (`bench`, already scored) and
    bench/more_sentences.py's five more, in the benchmark's keys ("top1": top-1 on most of the passages)."""
    from bench.more_sentences import SCORES, means, passages, scored_passages

    more = scored_passages(engine, candidate, lang, None, probes, speaker, passages(lang)[1:])["passages"]
    first = {score: bench[key] for score, key in SCORES.items()} | {"top1": bench["top1"]}
    mean = means([first, *more])
    return {key: mean[score] for score, key in SCORES.items()} | {
        "top1": mean["top1_share"] > 0.5, "top1_share": mean["top1_share"]
    }


def guard_hearing(sentences: list[np.ndarray], each_sentence: bool) -> Share:
    """What the guards hear of the guard's passage, from the same renders: the one-window guard (served until s30)
    the passage as a whole, and, with `each_sentence`, the guards since then each sentence on its own (repeated by
    DNSMOS to fill its window)."""
    from synth.fit.quality_guard import join_sentences, passage_quality

    heard: Share = {"guard_dnsmos": round(passage_quality(join_sentences(sentences)), 3)}
    if each_sentence:
        heard["guard_each"] = [round(passage_quality(sentence), 3) for sentence in sentences]
    return heard


def summarise(table: list[dict], tolerances: str, results: str) -> dict[str, Any]:  # type: ignore[type-arg]
    from synth.fit.style_fit import GUARD_SHARES

    bench = changes_from_start(table, lambda c: c["bench"]["dnsmos_ovrl"])
    guard = changes_from_start(table, itemgetter("guard_dnsmos"))
    return {
        "results": results,
        "guard_shares": GUARD_SHARES,
        # How well the guard's DNSMOS change (share vs start) foresees the benchmark's on other sentences.
        "guard_vs_bench_dnsmos_change": {
            "correlation": correlation(guard, bench),
            "mean_guard_change": round(float(guard.mean()), 3),
            "mean_bench_change": round(float(bench.mean()), 3),
        },
        "policies": [replay(table, float(t)) for t in tolerances.split(",")],
        **(two_windows(table, tolerances, bench) if "guard_dnsmos_b" in table[0]["shares"][0] else {}),
        **(each_sentence(table, tolerances, bench) if "guard_each" in table[0]["shares"][0] else {}),
        **(level_matched(table, tolerances) if "guard_dnsmos_matched" in table[0]["shares"][0] else {}),
        **(share_lists(table, tolerances) if "finer_shares" in table[0] else {}),
        **(more_sentences(table, tolerances) if "bench_more" in table[0]["shares"][0] else {}),
        **(more_guard_sentences(table, tolerances) if "guard_each_more" in table[0]["shares"][0] else {}),
        "best_share_sounding_as_clean_on_the_benchmark": oracle(table),
        "mean_frontier": mean_frontier(table),
        "likeness_trade": [likeness_trade(table, w) for w in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)],
        "speakers": table,
    }


def two_windows(table: list[dict], tolerances: str, bench: np.ndarray) -> dict[str, Any]:  # type: ignore[type-arg]
    """The guard with a second window: judging every share on the mean of both passages, or on its first passage
    unless that verdict is within SECOND_LOOK_MARGIN of the line (the start is then heard on both)."""
    levels = [float(t) for t in tolerances.split(",")]
    first = changes_from_start(table, itemgetter("guard_dnsmos"))
    second = changes_from_start(table, itemgetter("guard_dnsmos_b"))
    return {
        "two_windows_vs_bench_dnsmos_change": {
            "correlation_second_passage_alone": correlation(second, bench),
            "correlation_both": correlation(changes_from_start(table, both_windows), bench),
            "correlation_first_vs_second_passage": correlation(first, second),
        },
        "policies_two_windows": [replay(table, t, clean_on_both_windows, "both_windows") for t in levels],
        "policies_sequential": [replay(table, t, clean_sequentially, "second_window_near_the_line") for t in levels],
        "second_looks": [{"tolerance": t, "shares_needing_a_second_look": f"{second_looks(table, t)}/{bench.size}"}
                         for t in levels],
    }


def each_sentence(table: list[dict], tolerances: str, bench: np.ndarray) -> dict[str, Any]:  # type: ignore[type-arg]
    """The guard hearing each sentence on its own: how well its worst sentence's change foresees the benchmark's
    DNSMOS change, and what it keeps at each tolerance (its two sentences; with the second passage, all four)."""
    levels = [float(t) for t in tolerances.split(",")]
    four = "guard_each_b" in table[0]["shares"][0]
    worst_two = worst_changes(table, ("guard_each",))
    found: dict[str, Any] = {
        "each_sentence_vs_bench_dnsmos_change": {"correlation_worst_of_two": correlation(worst_two, bench)},
        "policies_each_sentence": [replay(table, t, clean_on_each_sentence, "each_sentence") for t in levels],
        "policies_mean_of_sentences": [
            replay(table, t, clean_on_mean_of_sentences, "mean_of_sentences") for t in levels
        ],
    }
    if four:
        worst_four = worst_changes(table, ("guard_each", "guard_each_b"))
        found["each_sentence_vs_bench_dnsmos_change"]["correlation_worst_of_four"] = correlation(worst_four, bench)
        found["policies_each_of_four"] = [replay(table, t, clean_on_each_of_four, "each_of_four") for t in levels]
    return found


def more_sentences(table: list[dict], tolerances: str) -> dict[str, Any]:  # type: ignore[type-arg]
    """The guards judged on eighteen sentences instead of the benchmark's three: how well the guard's change foresees
    the benchmark's over six passages, what each policy keeps by that measure, the best share and the frontier."""
    levels = [float(t) for t in tolerances.split(",")]
    bench_more = changes_from_start(table, lambda c: c["bench_more"]["dnsmos_ovrl"])
    bench = changes_from_start(table, lambda c: c["bench"]["dnsmos_ovrl"])
    found: dict[str, Any] = {
        "more_sentences_dnsmos_change": {
            "correlation_guard_one_window": correlation(changes_from_start(table, itemgetter("guard_dnsmos")),
                                                        bench_more),
            "correlation_benchmark_three_sentences": correlation(bench, bench_more),
            "mean_change": round(float(bench_more.mean()), 3),
        },
        "policies_more_sentences": [replay(table, t, bench="bench_more") for t in levels],
        "more_sentences_best_share": oracle(table, "bench_more"),
        "more_sentences_frontier": mean_frontier(table, "bench_more"),
    }
    if "guard_each" in table[0]["shares"][0]:
        guard_mean = changes_from_start(table, lambda c: float(np.mean(c["guard_each"])))
        found["more_sentences_dnsmos_change"] |= {
            "correlation_guard_mean_of_sentences": correlation(guard_mean, bench_more),
            # The same guard against the benchmark's three sentences alone, for comparison.
            "correlation_guard_mean_of_sentences_three_sentences": correlation(guard_mean, bench),
        }
        found["policies_more_sentences_mean_of_sentences"] = [
            replay(table, t, clean_on_mean_of_sentences, "mean_of_sentences", "bench_more") for t in levels
        ]
    return found


# Each guard's rule, and how many sentences it hears for the start and for each share it tries (None: two, and
# four more the first time a verdict is near the line; see sentences_heard).
GUARDS_OF_MORE_SENTENCES: dict[str, tuple[Clean, int | None]] = {
    "mean_of_2": (clean_on_mean_of(2), 2), "mean_of_4": (clean_on_mean_of(4), 4),
    "mean_of_6": (clean_on_mean_of(6), 6), "six_near_the_line": (clean_on_six_near_the_line, None),
}


def more_guard_sentences(table: list[dict], tolerances: str) -> dict[str, Any]:  # type: ignore[type-arg]
    """Guards that hear 2, 4 or 6 sentences (or 6 only near the line): how well their mean change foresees the
    benchmark's DNSMOS change (its three sentences; with --more-sentences, eighteen), what each keeps at every
    tolerance by either measure, and how many sentences it hears to choose (each costs about 2.5 CPU-s)."""
    levels = [float(t) for t in tolerances.split(",")]
    measures = ["bench", *(["bench_more"] if "bench_more" in table[0]["shares"][0] else [])]
    correlations = {}
    for measure in measures:
        dnsmos_change = np.array([c[measure]["dnsmos_ovrl"] - r["shares"][0][measure]["dnsmos_ovrl"]
                                  for r in table for c in r["shares"][1:]])
        for count in (2, 4, 6):
            guard_change = np.array([np.mean(heard_changes(r["shares"][0], c, count))
                                     for r in table for c in r["shares"][1:]])
            correlations[f"{count}_sentences_vs_{measure}"] = correlation(guard_change, dnsmos_change)
    found: dict[str, Any] = {"mean_of_sentences_vs_dnsmos_change": correlations}
    for name, (clean, per_hearing) in GUARDS_OF_MORE_SENTENCES.items():
        for measure in measures:
            policies = [replay(table, t, clean, name, measure) for t in levels]
            for t, policy in zip(levels, policies, strict=True):
                kept: list[dict[str, Any]] = policy["kept"]  # type: ignore[assignment]
                policy["guard_sentences_heard"] = sum(
                    sentences_heard(row, k["tried"], per_hearing, t) for row, k in zip(table, kept, strict=True)
                )
            found[f"policies_{name}_on_{measure}"] = policies
    return found


def sentences_heard(row: dict, tried: int, per_hearing: int | None, tolerance: float) -> int:  # type: ignore[type-arg]
    """Sentences a guard hears to choose for one speaker: `per_hearing` for the start and each share tried; the
    sequential guard (None) its two for each, and the start's four more and each share's the first time it needs
    them."""
    if per_hearing is not None:
        return per_hearing * (1 + tried)
    start, shares = row["shares"][0], row["shares"][1 : 1 + tried]
    looks = sum(needs_more_sentences(start, share, tolerance) for share in shares)
    return 2 * (1 + tried) + 4 * (looks + (looks > 0))


def share_lists(table: list[dict], tolerances: str) -> dict[str, Any]:  # type: ignore[type-arg]
    """The served guard (each sentence) trying the shares in each order of SHARE_LISTS, and what every share
    scores on the benchmark on average (how much likeness each step gives back, at what DNSMOS)."""
    levels = [float(t) for t in tolerances.split(",")]
    every_share = sorted({tuple(c["share"]) for c in table[0]["shares"] + table[0]["finer_shares"]}, reverse=True)
    found: dict[str, Any] = {"share_means": [share_mean(table, share) for share in every_share]}
    for name, order in SHARE_LISTS.items():
        found[f"policies_each_sentence_{name}"] = [
            replay(table, t, clean_on_each_sentence, f"each_sentence_{name}", order=order) for t in levels
        ]
        found[f"policies_mean_of_sentences_{name}"] = [
            replay(table, t, clean_on_mean_of_sentences, f"mean_of_sentences_{name}", order=order) for t in levels
        ]
    return found


def share_mean(table: list[dict], share: tuple[float, float]) -> dict[str, Any]:  # type: ignore[type-arg]
    """One share's benchmark scores and guard verdicts over every speaker."""
    scored = [candidates(row, (share,))[0] for row in table]
    return {
        "share": list(share),
        "mean_normalised": round(float(np.mean([c["bench"]["normalised"] for c in scored])), 4),
        "top1": f"{sum(bool(c['bench']['top1']) for c in scored)}/{len(scored)}",
        "mean_dnsmos_ovrl": round(float(np.mean([c["bench"]["dnsmos_ovrl"] for c in scored])), 3),
        "clean_on_each_sentence_at_0.05": sum(
            clean_on_each_sentence(row["shares"][0], c, 0.05) for row, c in zip(table, scored, strict=True)
        ),
    }


def level_matched(table: list[dict], tolerances: str) -> dict[str, Any]:  # type: ignore[type-arg]
    """Every share brought to its start's loudness: how far the fits moved the level, how well the guard's verdict
    then foresees the benchmark's (matched) DNSMOS change, and what the guard keeps at each tolerance."""
    guard = changes_from_start(table, itemgetter("guard_dnsmos_matched"))
    bench = changes_from_start(table, lambda c: c["bench_matched"]["dnsmos_ovrl"])
    gains = np.array([c["gain_db"] for r in table for c in r["shares"][1:]])
    return {
        "level_matched_gain_db": {"median": round(float(np.median(gains)), 2),
                                  "min": round(float(gains.min()), 2), "max": round(float(gains.max()), 2)},
        "level_matched_guard_vs_bench_dnsmos_change": {"correlation": correlation(guard, bench)},
        "policies_level_matched": [
            replay(table, float(t), clean_at_matched_level, "level_matched", "bench_matched")
            for t in tolerances.split(",")
        ],
    }


def second_looks(table: list[dict], tolerance: float) -> int:  # type: ignore[type-arg]
    return sum(close_to_the_line(r["shares"][0], c, tolerance) for r in table for c in r["shares"][1:])


def write(result: dict[str, Any], out: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    summaries: dict[str, list[dict[str, Any]]] = {
        name: [{k: v for k, v in p.items() if k != "kept"} for p in result[name]]
        for name in result if name.startswith("policies")
    }
    print(json.dumps({k: v for k, v in result.items() if k != "speakers"} | {
        **summaries,
        "best_share_sounding_as_clean_on_the_benchmark": {
            k: v for k, v in result["best_share_sounding_as_clean_on_the_benchmark"].items() if k != "kept"
        },
        "mean_frontier": result["mean_frontier"],
        **({"more_sentences_best_share": {k: v for k, v in result["more_sentences_best_share"].items() if k != "kept"}}
           if "more_sentences_best_share" in result else {}),
        "likeness_trade": result["likeness_trade"],
    }, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
