"""GPT-SoVITS v2 cost at the real dimensions (24 layers, width 512), random weights.

    python bench/gptsovits.py [--batches 1 2 4 8 16] [--tokens 32] [--threads 1] [--tiny]

Builds full-size random models in the official layouts, exports them to ONNX and runs
them on ONNX Runtime (the provider it picks: CPU here). For each batch size: the
autoregressive stage's tokens per second (decode steps only, and with the prefill),
the real-time factor of the whole pipeline (prefill + decode + SoVITS decoder) and
time to the first streamed chunk at batch 1. Prints a markdown table and writes
bench/results/gptsovits.json. Weights are random, so only cost is meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from synth.engines.gptsovits.backend import Backend, TorchBackend
from synth.engines.gptsovits.batching import ContinuousDecoder, DecodeRequest
from synth.engines.gptsovits.loader import ModelFiles, load_torch_models
from synth.engines.gptsovits.onnx_export import export_all
from synth.engines.gptsovits.runtime import OrtBackend
from synth.engines.gptsovits.sampling import SamplingParams
from synth.engines.gptsovits.streaming import ContinuousSynthesizer, Utterance
from synth.engines.gptsovits.tiny import build
from synth.engines.gptsovits.vocoder import ChunkPolicy, VocodeRequest, frame_noise, vocode_batch

RESULTS = Path(__file__).parent / "results" / "gptsovits.json"
TEXT_PHONES = 40  # a clause of about 15 Chinese characters
PROMPT_PHONES = 30  # the reference transcript
PROMPT_TOKENS = 150  # a 6 s reference recording at 25 Hz
# Figures reported by the design this project started from (one A10, TensorRT FP16).
DESIGN = {"throughput_per_energy_gain_at_batch_8": 3.0, "concurrent_streams_under_300ms_a10": 120}


def _requests(n: int, tokens: int, seed: int = 0) -> list[DecodeRequest]:
    rng = np.random.default_rng(seed)
    fixed = SamplingParams(min_tokens=tokens, max_tokens=tokens)  # random weights: force the length
    return [
        DecodeRequest(
            rng.integers(1, 732, PROMPT_PHONES + TEXT_PHONES),
            rng.integers(0, 1024, PROMPT_TOKENS),
            SamplingParams(**{**fixed.__dict__, "seed": seed + i}),
        )
        for i in range(n)
    ]


def bench_batch(backend: Backend, batch: int, tokens: int) -> dict[str, float]:
    decoder = ContinuousDecoder(backend, max_batch=batch)
    for request in _requests(batch, tokens):
        decoder.submit(request)
    start, cpu_start = time.perf_counter(), time.process_time()
    decoder.step()  # admits every row: one prefill
    prefill_s = time.perf_counter() - start
    out: dict[int, list[int]] = {}
    while decoder.has_work():
        for event in decoder.step():
            if event.token is not None:
                out.setdefault(event.row, []).append(event.token)
    ar_s = time.perf_counter() - start
    ar_cpu_s = time.process_time() - cpu_start
    dims = backend.dims
    rng = np.random.default_rng(1)
    vocode_requests = [
        VocodeRequest(
            np.asarray(t, np.int64),
            rng.integers(1, 732, TEXT_PHONES),
            rng.standard_normal(dims.gin_channels).astype(np.float32),
            frame_noise(i, dims.inter_channels, 0.5),
        )
        for i, t in enumerate(out.values())
    ]
    start, cpu_start = time.perf_counter(), time.process_time()
    audio = vocode_batch(backend, vocode_requests)
    vocode_s = time.perf_counter() - start
    vocode_cpu_s = time.process_time() - cpu_start
    audio_s = sum(len(a) for a in audio) / dims.sample_rate
    generated = sum(len(t) for t in out.values())
    return {
        "batch": batch,
        "tokens_per_row": tokens,
        "prefill_s": prefill_s,
        # the first token of each row comes from the prefill
        "decode_tokens_per_s": (generated - batch) / (ar_s - prefill_s),
        "ar_tokens_per_s_with_prefill": generated / ar_s,
        "vocoder_s": vocode_s,
        "audio_s": audio_s,
        "rtf": (ar_s + vocode_s) / audio_s,
        # CPU seconds of this process: less disturbed than wall time when the machine is shared
        "ar_cpu_s": ar_cpu_s,
        "vocoder_cpu_s": vocode_cpu_s,
        "cpu_rtf": (ar_cpu_s + vocode_cpu_s) / audio_s,
        "ar_tokens_per_cpu_s": generated / ar_cpu_s,
    }


def first_chunk_latency(backend: Backend, policy: ChunkPolicy) -> float:
    dims = backend.dims
    request = _requests(1, 40)[0]
    rng = np.random.default_rng(2)
    timbre = rng.standard_normal(dims.gin_channels).astype(np.float32)
    synth = ContinuousSynthesizer(backend, max_batch=1, policy=policy)
    start = time.perf_counter()
    synth.submit(Utterance(request, request.phones[PROMPT_PHONES:], timbre))
    while True:
        if any(len(e.audio) for e in synth.step()):
            return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--tokens", type=int, default=32, help="tokens decoded per row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="tiny models (a quick check of the script)")
    parser.add_argument("--torch", action="store_true", help="also time the PyTorch reference at batch 1")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="gptsovits-bench-") as tmp:
        models_dir = Path(tmp)
        t0 = time.perf_counter()
        build(models_dir, full_size=not args.tiny)
        models = load_torch_models(ModelFiles.find(models_dir))
        export_all(models, models_dir / "onnx")
        reference = TorchBackend(models)
        backend = OrtBackend(models_dir / "onnx", reference.dims, threads=args.threads)
        setup_s = time.perf_counter() - t0
        print(f"models built and exported in {setup_s:.0f} s; runtime {backend.name}")

        bench_batch(backend, 1, 4)  # warm-up
        rows = []
        for batch in args.batches:
            row = bench_batch(backend, batch, args.tokens)
            rows.append(row)
            print(f"batch {batch}: {row['decode_tokens_per_s']:.1f} tok/s, RTF {row['rtf']:.2f}", flush=True)
        policy = ChunkPolicy()
        ttfc = float(np.median([first_chunk_latency(backend, policy) for _ in range(3)]))
        torch_row = bench_batch(reference, 1, args.tokens) if args.torch else None

    base = rows[0]["decode_tokens_per_s"] if rows[0]["batch"] == 1 else None
    best = min(rows, key=lambda r: r["rtf"])
    result = {
        "runtime": backend.name,
        "threads": args.threads,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        "dims": {"n_layer": reference.dims.n_layer, "width": reference.dims.heads * reference.dims.head_dim},
        "tiny": args.tiny,
        "prompt_tokens": PROMPT_TOKENS,
        "phones": PROMPT_PHONES + TEXT_PHONES,
        "rows": rows,
        "first_chunk_s": ttfc,
        "first_chunk_policy": {"first_chunk": policy.first_chunk, "overlap": policy.overlap},
        "throughput_gain_batch_8_vs_1": (
            next(r["decode_tokens_per_s"] for r in rows if r["batch"] == 8) / base
            if base and any(r["batch"] == 8 for r in rows)
            else None
        ),
        "realtime_streams_per_core": 1.0 / best["rtf"] / args.threads,
        "realtime_streams_per_core_by_cpu_time": 1.0 / min(r["cpu_rtf"] for r in rows),
        "torch_batch_1": torch_row,
        "design_reference": DESIGN,
    }
    if not args.tiny:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(
        "| batch | AR decode tok/s | AR tok/s incl. prefill | AR tok/CPU-s incl. prefill "
        "| prefill s | vocoder s | audio s | RTF | CPU RTF |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['batch']} | {r['decode_tokens_per_s']:.1f} | {r['ar_tokens_per_s_with_prefill']:.1f} | "
            f"{r['ar_tokens_per_cpu_s']:.1f} | {r['prefill_s']:.2f} | {r['vocoder_s']:.2f} | "
            f"{r['audio_s']:.1f} | "
            f"{r['rtf']:.2f} | {r['cpu_rtf']:.2f} |"
        )
    print(f"\ntime to first chunk (batch 1): {ttfc * 1000:.0f} ms")
    if result["throughput_gain_batch_8_vs_1"]:
        gain = result["throughput_gain_batch_8_vs_1"]
        print(f"AR throughput gain batch 8 vs 1: {gain:.2f}x (design: ~3x per unit of energy on an A10)")
    streams = result["realtime_streams_per_core"]
    print(f"real-time streams per CPU core at the best batch: {streams:.2f} (design: >120 on an A10)")


if __name__ == "__main__":
    main()
