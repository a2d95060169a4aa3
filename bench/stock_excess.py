"""How much of its stock start does a fit keep? The stock-contrast term's measure on saved fits.

Every fit starts from a stock voice, and a stock voice's render is far more like its own fitting-encoder print than
any recording is. For every speaker of a voice_similarity run saved with --save-packs, this renders the benchmark's
sentences in the stock start and in the whole fit offered to the guard, and reports by Resemblyzer (the fitting
encoder): the render's cosine to the recording's voiceprint, to each stock voice's print, and the mean excess over
the recording's own cosines to them (`style_fit.StockAnchors.excess`, what FitSettings.w_stock_contrast weighs);
and by the judge: the margin to top-1 (own probe minus the nearest other's).

    python bench/voice_similarity.py --unguarded --save-packs DIR --out NAME [--stock-contrast W]
    python bench/stock_excess.py --packs DIR --results NAME [--speakers A,B] [--out stock_excess]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_results_option, parse_replay, write_replay  # noqa: E402
from bench.top1_margin import margins  # noqa: E402
from bench.voice_similarity import enrolled_target, saved_fits, saved_run, speak  # noqa: E402


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        kind: {
            "mean_excess": round(float(np.mean([row[kind]["excess"] for row in rows])), 4),
            "mean_cosine_to_recording": round(float(np.mean([row[kind]["cosine_to_recording"] for row in rows])), 4),
            "top1": f"{sum(row[kind]['judge']['margin'] > 0 for row in rows)}/{len(rows)}",
        }
        for kind in ("stock", "whole_fit")
    }


def main(argv: list[str]) -> None:
    args = parse_replay(argv, __doc__, "stock_excess", summarise, add_results_option)
    if args is None:
        return

    import torch

    from synth.enroll import judge
    from synth.enroll.contract import FittedStyle
    from synth.fit import resemblyzer_torch
    from synth.fit.style_fit import StockAnchors

    started = time.perf_counter()
    rows_in, probes, engine = saved_run(args.results, args.voices, args.speakers)
    rows = []
    for row, lang, stock, offered in saved_fits(args.packs, rows_in):
        speaker = row["speaker"]
        voiceprint = torch.as_tensor(enrolled_target(args.voices, speaker)[1].voiceprint, dtype=torch.float32)
        voiceprint = voiceprint / voiceprint.norm()
        anchors = StockAnchors.for_voiceprint(voiceprint)
        out: dict[str, Any] = {
            "speaker": speaker, "stock_voice": row["stock_voice"],
            "recording_to_stock": [round(float(c), 4) for c in anchors.recording_cosines],
        }
        for kind, style in (("stock", FittedStyle(stock, None)), ("whole_fit", offered)):
            audio = speak(engine, style, lang)
            embedding = torch.from_numpy(resemblyzer_torch.embed_numpy(audio))
            out[kind] = {
                "cosine_to_recording": round(float(embedding @ voiceprint), 4),
                "cosine_to_stock": [round(float(c), 4) for c in anchors.prints @ embedding],
                "excess": round(float(anchors.excess(embedding)), 4),
                "judge": margins(judge.embed_speech_of(audio, 24000), probes, speaker),
            }
        rows.append(out)
        print(f"{speaker} ({time.perf_counter() - started:.0f} s): excess {out['stock']['excess']:.3f} -> "
              f"{out['whole_fit']['excess']:.3f}", file=sys.stderr, flush=True)
    write_replay(args.out, {
        "what": "Resemblyzer excess of a render over the recording's cosine to each stock voice's print (mean over "
                "the stock voices, counted where positive), for the stock start and the whole fit",
        "packs": str(args.packs),
        "results": args.results,
    }, rows, summarise, started)


if __name__ == "__main__":
    main(sys.argv[1:])
