"""Does a voice's DNSMOS on the benchmark's three sentences hold on more sentences?

bench/voice_similarity.py scores every voice on three sentences, as the issue asks, and its goal "DNSMOS no worse
than the stock voice" compares 9-voice means of that score. bench/dnsmos_sensitivity.py found that a fit moved a
hair scores P.835 a median SD of about 0.06 apart on those sentences, while the quality guard's verdict on its own
two sentences does not follow: the two move together across copies of one fit at r -0.10 (pooled within speakers,
dnsmos_sensitivity_s35.json). So P.835 on a few sentences is part voice, part which sentences were said.

This replays a voice_similarity run saved with --save-packs: for every speaker the stock voice it started from,
the served voice (pack, per-layer timbre, suppressor and the share of colour that run kept), the whole fit (never
served: what the quality checks give up) and, for what the colour and the suppressor do, the served voice without
its colour and the whole fit with the served suppressor share each speak the benchmark's three sentences (passage
0, which reproduces the run's own row) and MORE_PASSAGES more passages of three held-out sentences in the same way,
each passage scored like the benchmark (judge similarity, top-1, P.835, P.808). Reported per voice: the mean over
speakers on passage 0 and over all passages, the served voice's paired change from stock on every passage (how far
three sentences alone can swing the comparison) and on all of them together.

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME
    python bench/more_sentences.py --packs DIR --results NAME [--speakers A,B] [--voices-to-score A,B]
                                   [--out more_sentences]
    python bench/more_sentences.py --merge SHARD1,SHARD2 --out more_sentences

With --guard-replay (a guard_replay --each-sentence --more-sentences result on the same packs) and
--guard-tolerances T1,T2, it also scores "served_guard_T": the voice the fit would have served had its style guard
had tolerance T (the share that guard keeps of the saved whole fit, the suppressor, and the colour fitted and
guarded on it anew). At fixed steps the fit does not depend on the guard, so this is the whole served path. A
served_guard_T voice that keeps the served share (or an earlier T's) is that voice, and takes its scores ("same_as").
With --guard-policies (of guard_replay.GUARDS_OF_MORE_SENTENCES; a guard_replay --more-guard-sentences result) it
scores "<policy>_guard_T" the same way: the voice served had the guard heard four or six sentences.
Every voice's paired P.835 change from stock is summarised as "<voice>_minus_stock_p835".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, add_results_option, parse_replay, write_replay  # noqa: E402
from bench.voice_similarity import (  # noqa: E402
    EVAL_SENTENCES,
    saved_run,
    saved_voice,
    saved_whole_fit,
    score_output,
    speak,
)

# Held out from everything the fit, its guards and the benchmark say (synth/fit/style_fit.TRAINING_SENTENCES, the
# guard's passage, EVAL_SENTENCES); everyday sentences of about the benchmark's length, spoken three to a passage.
MORE_SENTENCES = {
    "en": (
        "The children are playing in the garden after school.",
        "I forgot my umbrella, so I got wet on the way.",
        "Could you tell me where the nearest bank is?",
        "We cooked dinner together and watched an old movie.",
        "The train was late again because of the snow.",
        "She has been learning to play the piano for three years.",
        "Do you want tea or coffee with your breakfast?",
        "He wrote a long letter to his grandmother in the village.",
        "The museum opens at nine and closes at five.",
        "Remember to water the plants while I am away.",
        "Our neighbours are moving to a bigger house next month.",
        "Which song did you like best at the concert?",
        "The doctor told him to rest for a few days.",
        "They walked along the beach and collected shells.",
        "It is much colder this morning than it was yesterday.",
    ),
    "zh": (
        "孩子们放学以后在花园里玩。",
        "我忘了带伞，路上全身都湿了。",
        "请问最近的银行在哪里？",
        "我们一起做了晚饭，还看了一部老电影。",
        "因为下雪，火车又晚点了。",
        "她学弹钢琴已经三年了。",
        "早饭你想喝茶还是咖啡？",
        "他给住在村里的奶奶写了一封长信。",
        "博物馆早上九点开门，下午五点关门。",
        "我不在家的时候，记得给花浇水。",
        "我们的邻居下个月要搬到更大的房子去。",
        "音乐会上你最喜欢哪一首歌？",
        "医生让他在家休息几天。",
        "他们沿着海边散步，捡了很多贝壳。",
        "今天早上比昨天冷多了。",
    ),
    "ja": (
        "子どもたちは放課後に庭で遊んでいます。",
        "傘を忘れたので、帰り道でぬれてしまいました。",
        "一番近い銀行はどこにありますか。",
        "一緒に夕食を作って、古い映画を見ました。",
        "雪のせいで、電車がまた遅れました。",
        "彼女は三年前からピアノを習っています。",
        "朝ご飯には紅茶とコーヒーのどちらがいいですか。",
        "彼は田舎のおばあさんに長い手紙を書きました。",
        "博物館は九時に開いて、五時に閉まります。",
        "留守の間、植物に水をやるのを忘れないでね。",
        "隣の家族は来月、もっと大きい家に引っ越します。",
        "コンサートではどの曲が一番好きでしたか。",
        "医者は彼に数日休むように言いました。",
        "二人は浜辺を歩いて、貝殻を拾いました。",
        "今朝は昨日よりずっと寒いです。",
    ),
}
PER_PASSAGE = len(EVAL_SENTENCES["en"])  # sentences per passage, as the benchmark speaks them
MORE_PASSAGES = len(MORE_SENTENCES["en"]) // PER_PASSAGE
# "served_pack_only": the served voice without its colour; "whole_denoised": the whole fit with the served voice's
# suppressor share (what serving it unguarded would sound like; the benchmark scores it without).
VOICES = ("stock", "served", "whole", "served_pack_only", "whole_denoised")
# The voice_similarity row each voice's passage 0 should reproduce.
BENCHMARK_ROW = {"stock": "stock", "served": "fitted", "whole": "unguarded_pack_only",
                 "served_pack_only": "fitted_pack_only"}
SCORES = {"p835": "dnsmos_ovrl", "p808": "dnsmos_p808", "similarity": "normalised"}
# The served style guard's rule, as guard_replay.GUARDS_OF_MORE_SENTENCES names it: the mean of its two sentences.
SERVED_GUARD = "mean_of_2"


def passages(lang: str) -> list[tuple[str, ...]]:
    """The benchmark's own sentences first, then MORE_PASSAGES passages of MORE_SENTENCES, three to each."""
    more = MORE_SENTENCES[lang]
    return [EVAL_SENTENCES[lang]] + [more[i : i + PER_PASSAGE] for i in range(0, len(more), PER_PASSAGE)]


def mean_of(rows: list[dict[str, Any]], voice: str, score: str, which: slice) -> float:
    """Mean over speakers of each one's mean `score` over the passages `which`."""
    return float(np.mean([np.mean([p[score] for p in row[voice]["passages"][which]]) for row in rows]))


def scored_voices(rows: list[dict[str, Any]]) -> list[str]:
    """The voices scored in `rows`, in the order first met (VOICES, then any served_guard_T or <policy>_guard_T)."""
    names: dict[str, None] = {}
    for row in rows:
        names |= {key: None for key, value in row.items() if isinstance(value, dict) and "passages" in value}
    return list(names)


def minus_stock_p835(paired: list[dict[str, Any]], voice: str) -> dict[str, Any]:
    """`voice` minus stock P.835, per passage (a 9-voice mean on three sentences, as the benchmark takes it) and per
    speaker over all passages (the paired change and its standard error over speakers)."""
    by_passage = [
        float(np.mean([row[voice]["passages"][i]["p835"] - row["stock"]["passages"][i]["p835"] for row in paired]))
        for i in range(1 + MORE_PASSAGES)
    ]
    by_speaker = [row[voice]["mean"]["p835"] - row["stock"]["mean"]["p835"] for row in paired]
    return {
        "by_passage": [round(x, 4) for x in by_passage],
        "by_passage_sd": round(float(np.std(by_passage, ddof=1)), 4),
        "all_passages": round(float(np.mean(by_speaker)), 4),
        "all_passages_standard_error": round(float(np.std(by_speaker, ddof=1) / np.sqrt(len(by_speaker))), 4)
        if len(by_speaker) > 1 else None,
        "by_speaker": {row["speaker"]: round(d, 4) for row, d in zip(paired, by_speaker, strict=True)},
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"speakers": len(rows), "passages": 1 + MORE_PASSAGES, "per_passage": PER_PASSAGE}
    for voice in scored_voices(rows):
        found = [row for row in rows if voice in row]
        hits = [p["top1"] for row in found for p in row[voice]["passages"]]
        summary[voice] = {
            f"{score}_{part}": round(mean_of(found, voice, score, which), 4)
            for score in SCORES for part, which in (("benchmark", slice(0, 1)), ("all", slice(None)))
        } | {
            "top1_benchmark": f"{sum(row[voice]['passages'][0]['top1'] for row in found)}/{len(found)}",
            "top1_all_passages": f"{sum(hits)}/{len(hits)}",
        }
        paired = [row for row in found if "stock" in row]
        if voice != "stock" and paired:
            summary[f"{voice}_minus_stock_p835"] = minus_stock_p835(paired, voice)
    return summary


def scored_passages(engine: Any, fitted: Any, lang: str, colour: np.ndarray | None, probes: dict[str, np.ndarray],
                    speaker: str, which: list[tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Each passage (of `which`, default all of `lang`'s) spoken in one voice and scored like the benchmark, and the
    means over them."""
    scored = []
    for texts in passages(lang) if which is None else which:
        out = score_output(speak(engine, fitted, lang, colour, texts), probes, speaker)
        scored.append({score: out[key] for score, key in SCORES.items()} | {"top1": out["top1"]})
    return {"passages": scored, "mean": means(scored)}


def means(scored: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of each score over passages, and the share of them that were top-1."""
    return {score: round(float(np.mean([p[score] for p in scored])), 4) for score in SCORES} | {
        "top1_share": round(float(np.mean([p["top1"] for p in scored])), 3)
    }


def add_options(parser: argparse.ArgumentParser) -> None:
    add_results_option(parser)
    parser.add_argument("--voices-to-score", default=",".join(VOICES), help=f"comma-separated, of {VOICES}")
    parser.add_argument("--guard-replay", default=None,
                        help="a guard_replay --each-sentence result on the same packs: with --guard-tolerances, also "
                             "score the voice served had the style guard had another tolerance")
    parser.add_argument("--guard-tolerances", default="", help="comma-separated, for --guard-replay")
    parser.add_argument("--guard-policies", default=SERVED_GUARD,
                        help="comma-separated guard_replay.GUARDS_OF_MORE_SENTENCES, for --guard-replay (default: the "
                             "served guard's two sentences); another policy's voices are named <policy>_guard_T and "
                             "need a guard_replay --more-guard-sentences result")


def kept_shares(guard_replay: str, tolerances: str, policies: str = "") -> dict[str, dict[str, tuple[float, float]]]:
    """For each guard policy (comma-separated `policies` of guard_replay.GUARDS_OF_MORE_SENTENCES, default the served
    guard: the mean of its two sentences' changes) and each of the comma-separated `tolerances`: the (style, layers)
    share it keeps of each speaker's whole fit, replayed on a guard_replay result's scores (the renders and scores
    are deterministic, so this is the share the fit would have kept), by voice name (voice_name)."""
    from bench.guard_replay import GUARDS_OF_MORE_SENTENCES, replay

    table = json.loads((RESULTS / f"{guard_replay}.json").read_text())["speakers"]
    kept: dict[str, dict[str, tuple[float, float]]] = {}
    for policy in (policies or SERVED_GUARD).split(","):
        for tolerance in (t for t in tolerances.split(",") if t):
            replayed = replay(table, float(tolerance), GUARDS_OF_MORE_SENTENCES[policy][0], policy)["kept"]
            kept[voice_name(policy, tolerance)] = {k["speaker"]: tuple(k["kept"]) for k in replayed}  # type: ignore[attr-defined]
    return kept


def voice_name(policy: str, tolerance: str) -> str:
    """served_guard_T for the served guard's rule at another tolerance, <policy>_guard_T for another guard's."""
    return f"served_guard_{tolerance}" if policy == SERVED_GUARD else f"{policy}_guard_{tolerance}"


def main(argv: list[str]) -> None:
    args = parse_replay(argv, __doc__, "more_sentences", summarise, add_options)
    if args is None:
        return
    from synth.enroll.contract import FittedStyle
    from synth.fit.colour_fit import fit_colour
    from synth.fit.style_fit import FitSettings, with_suppressor

    kept_at = kept_shares(args.guard_replay, args.guard_tolerances, args.guard_policies) if args.guard_replay else {}
    started = time.perf_counter()
    rows_in, probes, engine = saved_run(args.results, args.voices, args.speakers)
    chosen = args.voices_to_score.split(",") + list(kept_at)
    rows = []
    for row_in in rows_in:
        speaker = row_in["speaker"]
        whole = saved_whole_fit(args.packs, speaker)
        saved = saved_voice(args.packs, args.voices, row_in)
        shares: dict[str, dict[str, Any]] = {}  # what each served_guard_T (<policy>_guard_T) voice kept
        lang, served = saved.lang, saved.served
        voices: dict[str, tuple[Any, np.ndarray | None]] = {
            "stock": (FittedStyle(saved.stock), None),
            "served": (served, saved.colour),
            "served_pack_only": (served, None),
        }
        if whole is not None:
            voices["whole"] = (whole, None)
            voices["whole_denoised"] = (replace(whole, denoise=served.denoise), None)
            # A served_guard_T voice that keeps the served share, or an earlier tolerance's, is that voice (the
            # renders are deterministic: s36's rebuilt voices reproduced the served ones to the last digit), so its
            # scores are copied rather than spoken again.
            voice_keeping = {tuple(row_in["guard"]["kept"]): "served"} if "served" in chosen else {}
            for name, kept in kept_at.items():  # what the fit would serve, had its guard been another
                style_share, layer_share = kept[speaker]
                if (style_share, layer_share) in voice_keeping:
                    twin = voice_keeping[(style_share, layer_share)]
                    colour_share = saved.colour_share if twin == "served" else shares[twin]["colour_share"]
                    shares[name] = {"kept": [style_share, layer_share], "same_as": twin, "colour_share": colour_share}
                    continue
                voice_keeping[(style_share, layer_share)] = name
                guarded = with_suppressor(whole.share_of_the_way(saved.stock, style_share, layer_share), saved.stock,
                                          FitSettings().denoise_output)
                kept_colour = fit_colour(saved.target, guarded.pack, layers=guarded.layers)
                voices[name] = (guarded, kept_colour.taps)
                shares[name] = {
                    "kept": [style_share, layer_share],
                    "colour_share": kept_colour.guard.scale if kept_colour.guard else 0.0,
                }
        row: dict[str, Any] = {"speaker": speaker, "colour_share": saved.colour_share}
        voices = {voice: spoken for voice, spoken in voices.items() if voice in chosen}
        for voice, (fitted, colour) in voices.items():
            row[voice] = scored_passages(engine, fitted, lang, colour, probes, speaker)
            if voice in BENCHMARK_ROW:
                row[voice]["benchmark_row_p835"] = row_in[BENCHMARK_ROW[voice]]["dnsmos_ovrl"]
            row[voice] |= shares.get(voice, {})
        for voice, choice in shares.items():
            if "same_as" in choice:
                twin_scores = row[choice["same_as"]]
                row[voice] = {"passages": twin_scores["passages"], "mean": twin_scores["mean"]} | choice
        rows.append(row)
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): P.835 " + ", ".join(
            f"{voice} {row[voice]['passages'][0]['p835']:.3f} (row {row[voice].get('benchmark_row_p835')}) "
            f"all {row[voice]['mean']['p835']:.3f}" for voice in voices), file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": f"{args.voices_to_score.replace(',', ', ')} voices each scored like the benchmark on its three "
                f"sentences (passage 0) and on {MORE_PASSAGES} more passages of {PER_PASSAGE} held-out sentences",
        "packs": str(args.packs),
        "results": args.results,
        "more_sentences": MORE_SENTENCES,
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
