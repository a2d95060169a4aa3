"""The decoder's int8 convolutions as GEMMs (synth/engines/int8_gemm.py): how much faster, how alike.

For each clause and two stock voices, the front's features are decoded by the packaged
decoder (ConvInteger) and by the rewritten one (MatMulIntegerToFloat), interleaved so both
see the same machine load, `--repeats` times each. Reports per clause the median decode
time of each and their ratio, the waveform correlation of the two (untrimmed, so they
line up sample for sample), the judge's cosine between them, and DNSMOS of each; then
medians over all clauses.

On a CPU without VNNI the rewrite keeps its weights within +-64 (`pair_safe`, as the engine does
there); `--pair-safe on` measures that on a VNNI CPU too.

    python bench/decoder_gemm.py [--repeats 7] [--threads 2] [--pair-safe auto|on|off]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, stock_clause_features, write_result  # noqa: E402
from synth.engines.kokoro import KokoroEngine, trim_silence  # noqa: E402

CLAUSES = [
    ("ok", "en"), ("好的", "zh"), ("在吗？", "zh"), ("thanks!", "en"), ("See you in five minutes.", "en"),
    ("今天的会议改到下午三点了。", "zh"), ("Can you hear me clearly now?", "en"), ("今日の天気はいいですね。", "ja"),
    ("周末一起去爬山怎么样？", "zh"), ("Sorry, my connection dropped for a second.", "en"),
]
VOICES = ("jf_alpha", "jm_kumo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="decoder_gemm", help="result file name under bench/results/")
    parser.add_argument("--pair-safe", choices=("auto", "on", "off"), default="auto",
                        help="weights within +-64 (auto: where the CPU has no VNNI, as the engine chooses)")
    args = parser.parse_args()
    from synth.enroll import dnsmos, judge, speech

    packaged = KokoroEngine(threads=args.threads, int8_gemm=False)
    pair_safe = {"auto": None, "on": True, "off": False}[args.pair_safe]
    rewritten = KokoroEngine(threads=args.threads, int8_gemm=True, pair_safe=pair_safe)
    packaged.warm_up()
    rewritten.warm_up()
    rows = []
    for voice, text, style, features in stock_clause_features(packaged, VOICES, CLAUSES):
        times: dict[str, list[float]] = {"conv": [], "gemm": []}
        audio = {}
        for _ in range(args.repeats):
            for label, engine in (("conv", packaged), ("gemm", rewritten)):
                started = time.perf_counter()
                audio[label] = engine._graphs().decode(features, style, 0, features.frames, None)
                times[label].append(time.perf_counter() - started)
        conv_s, gemm_s = statistics.median(times["conv"]), statistics.median(times["gemm"])
        heard = {label: speech.to_16k(trim_silence(pcm, 24000), 24000) for label, pcm in audio.items()}
        row = {
            "voice": voice,
            "text": text,
            "frames": features.frames,
            "decode_conv_ms": round(1000 * conv_s, 1),
            "decode_gemm_ms": round(1000 * gemm_s, 1),
            "speedup": round(conv_s / gemm_s, 3),
            "waveform_correlation": round(float(np.corrcoef(audio["conv"], audio["gemm"])[0, 1]), 4),
            "judge_cosine": round(
                float(judge.cosine(judge.embed_speech_of(heard["gemm"], 16000),
                                   judge.embed_speech_of(heard["conv"], 16000))), 3
            ),
            "dnsmos_conv": round(dnsmos.score(heard["conv"]).ovrl, 3),
            "dnsmos_gemm": round(dnsmos.score(heard["gemm"]).ovrl, 3),
        }
        rows.append(row)
        print(row)

    def median(key: str) -> float:
        return round(statistics.median(float(row[key]) for row in rows), 4)

    summary = {key: median(key) for key in (
        "speedup", "decode_conv_ms", "decode_gemm_ms", "waveform_correlation", "judge_cosine", "dnsmos_conv",
        "dnsmos_gemm",
    )}
    summary["min_waveform_correlation"] = min(float(row["waveform_correlation"]) for row in rows)
    print("medians:", summary)
    result = {"benchmark": "decoder_gemm", "machine": machine(), "threads": args.threads, "repeats": args.repeats,
              "pair_safe": rewritten.pair_safe,
              "median": summary, "rows": rows}
    print("written to", write_result(args.name, result))


if __name__ == "__main__":
    main()
