"""Would decoding less of a clause's leading silence pay? Time saved against how much the audio changes.

Kokoro gives the leading pad token 12-17 frames (0.3-0.4 s) that decode to silence and are
trimmed afterwards: a fifth to a third of a short clause's decode. The decoder's instance
norms see the whole window, so starting it later changes every sample, not just the cut
ones. For each clause and two stock voices this decodes the whole clause and the clause
from `--keep` frames before its first spoken token, and reports the decode time of each
(median of `--repeats`), the waveform correlation of the two (aligned), the judge's cosine
between them and DNSMOS of each. Nothing in the server uses the cut yet: this is the
evidence for deciding, together with a listening test.

    python bench/decode_lead_trim.py [--keep 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

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
from synth.engines.kokoro_graph import SAMPLES_PER_FRAME  # noqa: E402

CLAUSES = [
    ("在吗？", "zh"), ("thanks!", "en"), ("ok", "en"), ("哈哈", "zh"), ("我马上就到，", "zh"), ("等我一下。", "zh"),
    ("See you in five minutes.", "en"), ("Can you hear me clearly now?", "en"), ("今日の天気はいいですね。", "ja"),
    ("two hundred fifty six", "en"), ("周末一起去爬山怎么样？", "zh"),
    ("Sorry, my connection dropped for a second.", "en"),
]
VOICES = ("jf_alpha", "jm_kumo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=int, default=4, help="frames of lead silence kept before the first token")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="decode_lead_trim", help="result file name under bench/results/")
    args = parser.parse_args()
    engine, graphs = warm_kokoro_graphs()
    rows = []
    for voice, text, style, features in stock_clause_features(engine, VOICES, CLAUSES):
        start = max(0, features.lead_frames() - args.keep)
        whole_s, whole = timed_decode(graphs, features, style, 0, features.frames, args.repeats)
        cut_s, cut = timed_decode(graphs, features, style, start, features.frames, args.repeats)
        aligned = whole[start * SAMPLES_PER_FRAME :][: cut.size]
        row = {
            "voice": voice,
            "text": text,
            "frames": features.frames,
            "lead_frames": features.lead_frames(),
            "decode_ms": round(1000 * whole_s, 1),
            "decode_cut_ms": round(1000 * cut_s, 1),
            "correlation": round(float(np.corrcoef(aligned, cut[: aligned.size])[0, 1]), 3),
            **trimmed_audio_change(whole, cut, engine.sample_rate),
        }
        rows.append(row)
        print(row, flush=True)
    summary = {
        "median_time_ratio": round(statistics.median(r["decode_cut_ms"] / r["decode_ms"] for r in rows), 3),
        "median_correlation": round(statistics.median(r["correlation"] for r in rows), 3),
        "min_correlation": min(r["correlation"] for r in rows),
        "mean_dnsmos_ovrl": round(statistics.mean(r["dnsmos_ovrl"] for r in rows), 3),
        "mean_dnsmos_ovrl_cut": round(statistics.mean(r["dnsmos_ovrl_cut"] for r in rows), 3),
    }
    print(summary)
    result = {"benchmark": "decode_lead_trim", "machine": machine(), "keep_frames": args.keep, "summary": summary,
              "rows": rows}
    print("written to", write_result(args.name, result))


if __name__ == "__main__":
    main()
