"""What the per-layer timbre input (synth/engines/kokoro_layers.py) costs the served decoder.

The input gives each of the decoder's 58 AdaIN layers its own Add and quantisation of a
128-number vector, where the packaged graph quantises the timbre once. This decodes the
same clauses with the decoder as served and with the same decoder cut without that input,
interleaved so both see the same machine load, `--repeats` times each, and reports per clause
the median decode time of each, their ratio, and whether zero layers gave the same audio
sample for sample; then the median ratio.

    python bench/layer_input_cost.py [--repeats 9] [--threads 2]
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
from bench.decoder_gemm import CLAUSES, VOICES  # noqa: E402
from synth.engines import kokoro_graph  # noqa: E402
from synth.engines.int8_gemm import convs_as_gemm  # noqa: E402
from synth.engines.kokoro import KokoroEngine  # noqa: E402
from synth.engines.kokoro_layers import LAYER_STYLE_INPUT, zero_layers  # noqa: E402
from synth.engines.kokoro_model import model_file  # noqa: E402


def decoders(engine: KokoroEngine, threads: int) -> dict[str, object]:
    """ONNX Runtime sessions of the served decoder and of the same cut without the layer input."""
    front, served, phase = kokoro_graph.split_graph(model_file())
    edit = kokoro_graph.add_layer_style_input
    kokoro_graph.add_layer_style_input = lambda model: None  # type: ignore[assignment]
    try:
        _, plain, _ = kokoro_graph.split_graph(model_file())
    finally:
        kokoro_graph.add_layer_style_input = edit
    sessions = {}
    for label, decoder in (("served", served), ("without_layer_input", plain)):
        if engine.int8_gemm:
            decoder, _ = convs_as_gemm(decoder, pair_safe=engine.pair_safe)
        sessions[label] = engine._sessions((front, decoder, phase), threads)._decoder
    return sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="layer_input_cost", help="result file name under bench/results/")
    args = parser.parse_args()
    engine = KokoroEngine(threads=args.threads)
    sessions = decoders(engine, args.threads)
    rows = []
    for voice, text, style, features in stock_clause_features(engine, VOICES, CLAUSES):
        feeds = {
            kokoro_graph._FEATURES: features.text, kokoro_graph._F0: features.f0,
            kokoro_graph._ENERGY: features.energy, "style": style,
            kokoro_graph.PHASE_INPUT: np.zeros((1, 1, kokoro_graph.HARMONICS), np.float32),
        }
        inputs = {"served": {**feeds, LAYER_STYLE_INPUT: zero_layers()}, "without_layer_input": feeds}
        times: dict[str, list[float]] = {label: [] for label in sessions}
        audio = {}
        for _ in range(args.repeats + 1):  # the first round warms both up and is not counted
            for label, session in sessions.items():
                started = time.perf_counter()
                (audio[label],) = session.run(None, inputs[label])  # type: ignore[attr-defined]
                times[label].append(time.perf_counter() - started)
        served_s = statistics.median(times["served"][1:])
        plain_s = statistics.median(times["without_layer_input"][1:])
        row = {
            "voice": voice, "text": text, "frames": features.frames,
            "decode_served_ms": round(1000 * served_s, 2), "decode_without_ms": round(1000 * plain_s, 2),
            "ratio": round(served_s / plain_s, 4),
            "zero_layers_identical": bool(np.array_equal(audio["served"], audio["without_layer_input"])),
        }
        rows.append(row)
        print(row)
    summary = {
        "median_ratio": round(statistics.median(row["ratio"] for row in rows), 4),  # type: ignore[misc]
        "all_identical": all(row["zero_layers_identical"] for row in rows),
    }
    print("summary:", summary)
    result = {"benchmark": "layer_input_cost", "machine": machine(), "threads": args.threads,
              "repeats": args.repeats, "summary": summary, "rows": rows}
    print("written to", write_result(args.name, result))


if __name__ == "__main__":
    main()
