"""Which arrangement of Kokoro inference gives the most audio per CPU-second and per wall second?

For each (workers, threads per session): `workers` threads render clauses concurrently
through one ONNX Runtime session with `threads` intra-op threads, for a fixed time.
Prints and writes audio seconds per wall second, per CPU second, and clause latency.

    python bench/engine_pool.py [--seconds 30]
        [--arrangements 1x1,1x2,2x1,2x2,1x2-nospin,2x2-nospin,1x2-nospin-conv,2x2-nospin-narrow]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402
from synth.engines.base import ClauseRequest  # noqa: E402
from synth.engines.kokoro import KokoroEngine  # noqa: E402

CLAUSES = [
    ("你好,", "zh"),
    ("今天的会议改到下午三点了。", "zh"),
    ("Can you hear me clearly now?", "en"),
    ("我马上就到,", "zh"),
    ("See you in five minutes.", "en"),
    ("晚饭想吃什么?", "zh"),
    ("Good morning everyone,", "en"),
    ("这首歌真好听。", "zh"),
]


def run(
    workers: int, threads: int, seconds: float, spin: bool, int8_gemm: bool | None, narrow: bool = False
) -> dict[str, float]:
    engine = KokoroEngine(threads=threads, spin=spin, int8_gemm=int8_gemm, narrow_when_shared=narrow)
    engine.warm_up()
    voice = engine.stock_voice("jf_alpha")
    stop = time.perf_counter() + seconds
    latencies: list[float] = []
    audio_s = 0.0
    lock = threading.Lock()

    def loop(offset: int) -> None:
        nonlocal audio_s
        i = offset
        while time.perf_counter() < stop:
            text, lang = CLAUSES[i % len(CLAUSES)]
            started = time.perf_counter()
            (pcm,) = engine.synthesize_batch([ClauseRequest(text, lang, voice)])
            with lock:
                latencies.append(time.perf_counter() - started)
                audio_s += pcm.size / engine.sample_rate
            i += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(loop, range(workers)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    engine.close()
    return {
        "workers": workers,
        "threads_per_session": threads,
        "spinning": spin,
        "int8_gemm": engine.int8_gemm,
        "narrow_when_shared": engine.narrow_when_shared,
        "clauses": len(latencies),
        "audio_s_per_wall_s": round(audio_s / wall, 3),
        "audio_s_per_cpu_s": round(audio_s / cpu, 3),
        "clause_latency_p50_ms": round(1000 * statistics.median(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--arrangements", default="1x1,1x2,2x1,2x2,1x2-nospin,2x2-nospin",
        help="WORKERSxTHREADS, '-nospin': idle ONNX Runtime threads sleep instead of spinning; '-conv': the packaged "
        "int8 convolutions, '-gemm': their VNNI GEMM rewrite (neither: as the CPU decides), '-narrow': a clause "
        "rendered beside another runs on a one-thread copy of the graphs",
    )
    parser.add_argument("--name", default="engine_pool", help="result file name under bench/results/")
    args = parser.parse_args()
    rows = []
    for arrangement in args.arrangements.split(","):
        shape, *options = arrangement.split("-")
        workers, threads = (int(x) for x in shape.split("x"))
        int8_gemm = False if "conv" in options else True if "gemm" in options else None
        row = run(
            workers, threads, args.seconds, spin="nospin" not in options, int8_gemm=int8_gemm,
            narrow="narrow" in options,
        )
        rows.append(row)
        print(row)

    def label(row: dict[str, float]) -> str:
        return (
            f"{row['workers']}x{row['threads_per_session']}"
            + ("" if row["spinning"] else "-nospin")
            + ("-gemm" if row["int8_gemm"] else "-conv")
            + ("-narrow" if row["narrow_when_shared"] else "")
        )

    best_cpu = max(rows, key=lambda r: r["audio_s_per_cpu_s"])
    best_wall = max(rows, key=lambda r: r["audio_s_per_wall_s"])
    print(f"most audio per CPU-second: {label(best_cpu)}; per wall second: {label(best_wall)}")
    print("written to", write_result(args.name, {"benchmark": "engine_pool", "machine": machine(), "rows": rows}))


if __name__ == "__main__":
    main()
