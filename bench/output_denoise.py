"""Does a noise suppressor after the engine win back the P.835 DNSMOS that a fitted voice loses?

Whole fits lose P.835 on both of its parts (speech distortion SIG and background BAK) against the stock voices,
and the quality guard gives up likeness to keep it. If part of that loss were noise that a suppressor removes,
the guard could keep more of each fit. This renders the benchmark's three sentences (bench/voice_similarity.py's)
for each speaker with the nearest stock voice, the served voice and the whole fit of a run's --save-packs folder,
each as it is and through RNNoise (Xiph's recurrent suppressor, 48 kHz, 10 ms frames, from the `pyrnnoise`
wheel, as synth/output_denoise.py serves it), whole and mixed half-and-half with the original, and scores every
render as the benchmark does (judge similarity, top-1, P.835 and P.808 DNSMOS).

    python bench/output_denoise.py --packs DIR [--speakers A,B] [--out output_denoise]
    python bench/output_denoise.py --merge shard1,shard2 --out output_denoise
    python bench/output_denoise.py --cost [--out output_denoise_cost]

--cost measures what the suppressor adds to a clause's rendering: CPU seconds per second of audio of the engine
(one thread, the nearest stock voice of every reference speaker) and of the suppressor (the served module,
synth/output_denoise.py), medians over every benchmark sentence rendered five times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_results_option, parse_replay, write_result  # noqa: E402
from bench.voice_similarity import (  # noqa: E402
    EVAL_SENTENCES,
    read_24k,
    saved_fits,
    saved_run,
    score_output,
    served_style,
    speak,
)

SCORES = ("normalised", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
MIXES = {"rnnoise": 1.0, "rnnoise_half": 0.5}  # share of the suppressed signal in the output


def summarise(rows: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    summary: dict[str, object] = {"speakers": len(rows)}
    for name in rows[0]["renders"]:
        scores = [row["renders"][name] for row in rows]
        summary[name] = {
            "top1": f"{sum(bool(s['top1']) for s in scores)}/{len(scores)}",
            **{f"mean_{k}": round(float(np.mean([s[k] for s in scores])), 4 if k == "normalised" else 3)
               for k in SCORES},
        }
    return summary


def main(argv: list[str]) -> None:
    def add_options(parser: argparse.ArgumentParser) -> None:
        add_results_option(parser)
        parser.add_argument("--cost", action="store_true",
                            help="measure the suppressor's CPU cost against the engine's")

    args = parse_replay(argv, __doc__, "output_denoise", summarise, add_options,
                        packs_needed=lambda args: not args.cost)
    if args is None:
        return
    if args.cost:
        cost(args.voices, args.out if args.out != "output_denoise" else "output_denoise_cost")
        return

    from synth import output_denoise
    from synth.enroll.contract import FittedStyle

    started = time.perf_counter()
    rows_in, probes, engine = saved_run(args.results, args.voices, args.speakers)
    rows = []
    for row, lang, start, offered in saved_fits(args.packs, rows_in):
        speaker = row["speaker"]
        # the served voice as the engine renders it, before any suppressor: each mix is made below
        served = replace(served_style(args.packs, speaker, start), denoise=0.0)
        renders: dict[str, dict[str, object]] = {}
        for voice, style in (("stock", FittedStyle(start, None)), ("served", served), ("whole_fit", offered)):
            plain = speak(engine, style, lang)
            renders[voice] = score_output(plain, probes, speaker)
            cleaned = output_denoise.denoise(plain)  # once; each mix is made from it
            for name, mix in MIXES.items():
                renders[f"{voice}_{name}"] = score_output(mix * cleaned + (1.0 - mix) * plain, probes, speaker)
        rows.append({"speaker": speaker, "renders": renders})
        brief = {name: (s["normalised"], s["dnsmos_ovrl"], s["dnsmos_p808"]) for name, s in renders.items()}
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): {brief}", file=sys.stderr, flush=True)
    result = {
        "what": "the benchmark's three sentences per speaker in the nearest stock voice, the served voice (style and "
        "per-layer timbre, no colour) and the whole fit, each as rendered and after RNNoise (whole, and half mixed "
        "with the original); judge similarity on bench/voice_similarity.py's 0..1 scale, top-1, DNSMOS",
        "packs": str(args.packs),
        "results": args.results,
        "speakers": rows,
        "summary": summarise(rows),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_result(args.out, result)
    print(json.dumps(result["summary"], indent=2))


def cost(voices: Path, out: str, repeats: int = 5) -> None:
    from synth import output_denoise
    from synth.engines.base import ClauseRequest, Voice
    from synth.engines.kokoro import KokoroEngine
    from synth.enroll import features, quality
    from synth.fit import nearest_stock_pack

    engine = KokoroEngine(threads=1)
    engine.warm_up()
    render_cost, denoise_cost, seconds = [], [], []
    for path in sorted(voices.glob("*_enroll.wav")):
        lang = path.name.split("_", 1)[0]
        _gate, analysis = quality.assess(read_24k(path))
        _name, pack = nearest_stock_pack(features.extract(analysis, lang))
        voice = Voice(id="bench", engine="kokoro", params=pack, owner="bench")
        for text in EVAL_SENTENCES[lang]:
            for _ in range(repeats):
                t0 = time.process_time()
                audio = engine.render_clause(ClauseRequest(text, lang, voice))
                t1 = time.process_time()
                output_denoise.denoise(audio)
                t2 = time.process_time()
                length = len(audio) / output_denoise.RATE
                render_cost.append((t1 - t0) / length)
                denoise_cost.append((t2 - t1) / length)
                seconds.append(length)
    result = {
        "what": "CPU seconds per second of audio, one thread: the engine rendering a whole clause, and the noise "
        "suppressor (synth/output_denoise.py) on it; medians over the benchmark sentences, each rendered "
        f"{repeats} times in every reference speaker's nearest stock voice",
        "clauses": len(seconds),
        "median_clause_s": round(float(np.median(seconds)), 2),
        "median_render_cpu_per_audio_s": round(float(np.median(render_cost)), 4),
        "median_denoise_cpu_per_audio_s": round(float(np.median(denoise_cost)), 4),
        "denoise_over_render": round(float(np.median(np.array(denoise_cost) / np.array(render_cost))), 3),
    }
    write_result(out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
