"""Would decoding less of a clause's trailing silence pay? Frames saved against clipped endings and changed audio.

Kokoro gives the last spoken token of a clause (or the tone mark or vowel before its
punctuation) a long duration, 12-24 frames of 25 ms, and the decoder turns most of it into
silence that `trim_silence` then cuts: with the leading pad, a third of a short continuation's
decode ("281": 101 frames decoded, 64 kept). The front says where each token's frames are
(its aligned features repeat one column per token), but not where the sound ends inside the
long last token. This tries a rule: decode up to `--after` frames past the start of the last
token of at least `--long` frames among the clause's last three (the pad excluded), else the
whole clause. For each clause and voice it reports the frames saved, whether the rule would
have clipped the ending (the whole decode is still loud within two frames of the cut), the
decode time of each, and how much the kept audio changes (the decoder's instance norms see the
whole window, so a shorter window changes every sample a little): waveform correlation over
the audio `trim_silence` keeps, the judge's cosine, and DNSMOS of each.

Nothing in the server uses the cut: this is the evidence for deciding.

    python bench/decode_tail_trim.py [--long 12] [--after 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    machine,
    stock_clause_features,
    timed_decode,
    trimmed_audio_change,
    warm_kokoro_graphs,
    write_result,
)
from synth.engines.kokoro import SILENCE_THRESHOLD, trim_silence  # noqa: E402
from synth.engines.kokoro_graph import SAMPLES_PER_FRAME  # noqa: E402

CLAUSES = [
    ("在吗", "zh"), ("thanks!", "en"), ("ok", "en"), ("哈哈", "zh"), ("我马上就到，", "zh"), ("等我一下。", "zh"),
    ("See you in five minutes.", "en"), ("Can you hear me clearly now?", "en"), ("今日の天気はいいですね。", "ja"),
    ("281", "en"), ("301", "zh"), ("再讨论一下。", "zh"), ("周末一起去爬山怎么样？", "zh"),
    ("Sorry, my connection dropped for a second.", "en"), ("I just sent you the file,", "en"), ("lol", "en"),
]
VOICES = ("jf_alpha", "jf_gongitsune", "jm_kumo")


def token_runs(features) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """(start, length) of each token's frames: consecutive frames with the same feature column."""
    columns = features.text[0]
    changes = np.flatnonzero(np.any(columns[:, 1:] != columns[:, :-1], axis=0)) + 1
    bounds = [0, *changes.tolist(), features.frames]
    return [(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def cut_frame(features, *, long: int, after: int) -> int:  # type: ignore[no-untyped-def]
    """Where the rule stops decoding (features.frames: decode it all)."""
    spoken = token_runs(features)[:-1]  # the trailing pad token's frames are never speech
    for start, length in reversed(spoken[-3:]):
        if length >= long:
            return min(features.frames, start + after)
    return features.frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", type=int, default=12, help="frames that make a token the long last one")
    parser.add_argument("--after", type=int, default=16, help="frames decoded past the start of that token")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="decode_tail_trim", help="result file name under bench/results/")
    args = parser.parse_args()
    engine, graphs = warm_kokoro_graphs()
    rows: list[dict[str, Any]] = []
    for voice, text, style, features in stock_clause_features(engine, VOICES, CLAUSES):
        end = cut_frame(features, long=args.long, after=args.after)
        whole_s, whole = timed_decode(graphs, features, style, 0, features.frames, args.repeats)
        loud = np.flatnonzero(np.abs(whole) > SILENCE_THRESHOLD)
        last_loud_frame = float(loud[-1] / SAMPLES_PER_FRAME) if loud.size else 0.0
        row: dict[str, object] = {
            "voice": voice, "text": text, "frames": features.frames, "cut_at": end,
            "last_loud_frame": round(last_loud_frame, 1), "decode_ms": round(1000 * whole_s, 1),
        }
        if end < features.frames:
            cut_s, cut = timed_decode(graphs, features, style, 0, end, args.repeats)
            kept = trim_silence(whole, engine.sample_rate)
            kept_cut = trim_silence(cut, engine.sample_rate)
            begin = int(loud[0])
            span = min(kept.size, kept_cut.size)
            row |= {
                "clipped": last_loud_frame > end - 2,
                "decode_cut_ms": round(1000 * cut_s, 1),
                "kept_s": round(kept.size / engine.sample_rate, 3),
                "kept_cut_s": round(kept_cut.size / engine.sample_rate, 3),
                "correlation": round(float(np.corrcoef(whole[begin:][:span], cut[begin:][:span])[0, 1]), 4),
                **trimmed_audio_change(whole, cut, engine.sample_rate),
            }
        rows.append(row)
        print(row, flush=True)
    cut_rows = [r for r in rows if "decode_cut_ms" in r]
    summary = {
        "clauses": len(rows),
        "cut": len(cut_rows),
        "clipped": sum(1 for r in cut_rows if r["clipped"]),
        "frames_saved_share": round(sum(r["frames"] - r["cut_at"] for r in rows) / sum(r["frames"] for r in rows), 3),
        "decode_time_saved_share": round(
            1 - sum(r.get("decode_cut_ms", r["decode_ms"]) for r in rows) / sum(r["decode_ms"] for r in rows), 3
        ),
    }
    if cut_rows:
        summary |= {
            "min_correlation": min(r["correlation"] for r in cut_rows),
            "median_correlation": statistics.median(r["correlation"] for r in cut_rows),
            "min_judge_cosine": min(r["judge_cosine"] for r in cut_rows),
            "mean_dnsmos_ovrl": round(statistics.mean(r["dnsmos_ovrl"] for r in cut_rows), 3),
            "mean_dnsmos_ovrl_cut": round(statistics.mean(r["dnsmos_ovrl_cut"] for r in cut_rows), 3),
        }
    print(summary)
    result = {"benchmark": "decode_tail_trim", "machine": machine(), "long_frames": args.long,
              "after_frames": args.after, "summary": summary, "rows": rows}
    print("written to", write_result(args.name, result))


if __name__ == "__main__":
    main()
