"""Helpers every benchmark shares: percentiles, metrics scraping, machine facts, writing results."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from synth.cpu import cpu_flags, cpuinfo_field

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1) if ms else float("nan"),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1) if ms else float("nan"),
    }


def scrape_metrics(base_url: str) -> dict[str, float]:
    """Prometheus text to {'name{labels}': value}."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) ([-+0-9.eEinfNa]+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def cpu_vector_extensions() -> list[str]:
    """The CPU's SIMD flags that decide the int8 engine's speed (VNNI makes its int8 dot products several times
    faster than AVX2 alone: the same benchmark differs by more than 2x between such machines)."""
    present = cpu_flags()
    return [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if flag in present]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpuinfo_field("model name"),
        "cpu_vector_extensions": cpu_vector_extensions(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return path


def write_replay(out: str, fields: dict[str, Any], rows: list[Any], summarise: Callable[[list[Any]], Any],
                 started: float) -> None:
    """Write a replay benchmark's result (its own `fields`, the speakers' rows and their summary) and print the
    summary; `started` is the run's time.perf_counter() at its start."""
    result = {**fields, "speakers": rows, "summary": summarise(rows), "wall_s": round(time.perf_counter() - started, 1)}
    write_result(out, result)
    print(json.dumps(result["summary"], indent=2))


def changes_from_start(rows: list[dict[str, Any]], value: Callable[[dict[str, Any]], float]) -> np.ndarray:
    """For replay rows (each with "shares", the start first): every other share's `value` minus its start's."""
    return np.array([value(share) - value(row["shares"][0]) for row in rows for share in row["shares"][1:]])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.corrcoef(a, b)[0, 1]), 3)


def add_replay_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The options of a benchmark that replays a voice_similarity run's saved packs in shards."""
    parser.add_argument("--voices", type=Path, default=RESULTS.parents[1] / "tests" / "data" / "voices")
    parser.add_argument("--packs", type=Path, default=None, help="a voice_similarity --save-packs folder")
    parser.add_argument("--speakers", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--out", default=out, help="results name under bench/results/")
    parser.add_argument("--merge", default="", help="comma-separated shard results to merge into --out")


def add_results_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="voice_similarity", help="the voice_similarity run that saved the packs")


def parse_replay(
    argv: list[str],
    doc: str | None,
    out: str,
    summarise: Callable[[list[Any]], Any],
    add_options: Callable[[argparse.ArgumentParser], None] | None = None,
    packs_needed: Callable[[argparse.Namespace], bool] = lambda args: True,
) -> argparse.Namespace | None:
    """The options of a replay benchmark (`add_replay_arguments` and its own `add_options`). With --merge the
    shards are merged and summarised here, and None is returned; without --packs, when `packs_needed`, it exits."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_arguments(parser, out)
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args(argv)
    if args.merge:
        merge_shards(args.merge.split(","), args.out, summarise)
        return None
    if args.packs is None and packs_needed(args):
        parser.error("--packs is needed: the served packs of a voice_similarity run (--save-packs)")
    return args


def merge_shards(names: list[str], out: str, summarise: Callable[[list[Any]], Any]) -> dict[str, Any]:
    """Results of one benchmark run in shards (each a result with its "speakers" rows and "wall_s"), as one result
    summarised anew, written under `out` and printed."""
    parts = [json.loads((RESULTS / f"{name}.json").read_text()) for name in names]
    result = parts[0] | {"speakers": [row for part in parts for row in part["speakers"]], "merged_from": names}
    result["summary"] = summarise(result["speakers"])
    result["wall_s"] = round(max(part["wall_s"] for part in parts), 1)
    write_result(out, result)
    print(json.dumps(result["summary"], indent=2))
    return result


def stock_clause_features(engine: Any, voices: Iterable[str], clauses: Iterable[tuple[str, str]]) -> Iterator[Any]:
    """(voice, text, style, features) for each stock voice and (text, language): a Kokoro decoder's inputs."""
    clauses = list(clauses)
    for voice in voices:
        pack = engine.stock_pack(voice)
        for text, lang in clauses:
            tokens = engine.tokens_for(engine.g2p.phonemize(text, lang))
            style, features = engine._front(tokens, pack)
            yield voice, text, style, features


def timed_decode(graphs: Any, features: Any, style: Any, start: int, end: int, repeats: int) -> tuple[float, Any]:
    """Median seconds to decode frames [start, end) of a clause (with the phase graph a later window needs), and
    the audio."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        phase = graphs.phase(features) if start > 0 else None
        audio = graphs.decode(features, style, start, end, phase)
        times.append(time.perf_counter() - started)
    return statistics.median(times), audio


def warm_kokoro_graphs() -> tuple[Any, Any]:
    """(engine, its graphs with all threads): the stock Kokoro engine, warmed up, for decoder benchmarks."""
    from synth.engines.kokoro import KokoroEngine

    engine = KokoroEngine()
    engine.warm_up()
    return engine, engine._graphs()


def trimmed_audio_change(whole: Any, cut: Any, sample_rate: int) -> dict[str, float]:
    """How a cheaper decode of a clause sounds against the whole one, both trimmed of silence as served: the
    judge's cosine between them and DNSMOS of each."""
    from synth.engines.kokoro import trim_silence
    from synth.enroll import dnsmos, judge, speech

    a16 = speech.to_16k(trim_silence(whole, sample_rate), sample_rate)
    b16 = speech.to_16k(trim_silence(cut, sample_rate), sample_rate)
    return {
        "judge_cosine": round(judge.cosine(judge.embed(a16), judge.embed(b16)), 3),
        "dnsmos_ovrl": round(dnsmos.score(a16).ovrl, 3),
        "dnsmos_ovrl_cut": round(dnsmos.score(b16).ovrl, 3),
    }
