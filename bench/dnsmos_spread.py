"""How much of a DNSMOS figure is the render, not the voice: the stock voices' score under a nudge of their style.

The similarity benchmark compares the fitted voices' DNSMOS with the stock voices', each scored once on
three sentences. A render is deterministic on one CPU, but a style moved by a thousandth of its values (or
the same graph on another CPU's kernels) is a different render of the same voice, and DNSMOS moves with it.
For every stock voice and language this renders the benchmark's three sentences with the packaged style
and with `--nudges` styles each multiplied by (1 + 0.001 x N(0, 1)), and reports the spread of DNSMOS P.835
OVRL: the noise in any one voice's figure, and so in the stock mean the goal is measured against.

    python bench/dnsmos_spread.py [--nudges 5] [--name dnsmos_spread]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402
from bench.voice_similarity import EVAL_SENTENCES, GAP_S  # noqa: E402

NUDGE = 1e-3
LANGUAGES = ("en", "zh")


def passage(engine, pack: np.ndarray, lang: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The benchmark's three sentences in `lang`, spoken with `pack`, as voice_similarity joins them."""
    from synth.engines.base import ClauseRequest, Voice

    voice = Voice(id="spread", engine="kokoro", params=pack, owner="bench")
    gap = np.zeros(int(GAP_S * engine.sample_rate), np.float32)
    parts: list[np.ndarray] = []
    for text in EVAL_SENTENCES[lang]:
        parts += [engine.synthesize_batch([ClauseRequest(text, lang, voice)])[0], gap]
    return np.concatenate(parts[:-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nudges", type=int, default=5, help="nudged renders per voice and language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="dnsmos_spread", help="result file name under bench/results/")
    args = parser.parse_args()

    from synth.engines.kokoro import KokoroEngine
    from synth.enroll import dnsmos, speech

    engine = KokoroEngine(threads=1)
    engine.warm_up()
    rng = np.random.default_rng(args.seed)
    rows = []
    for voice in sorted(v.name for v in engine.stock_voices()):
        packed = engine.stock_pack(voice)
        for lang in LANGUAGES:
            scores = []
            for k in range(args.nudges + 1):
                pack = packed if k == 0 else (packed * (1 + NUDGE * rng.standard_normal(packed.shape))).astype(
                    np.float32
                )
                audio = passage(engine, pack, lang)
                scores.append(round(dnsmos.score(speech.to_16k(audio, engine.sample_rate)).ovrl, 3))
            row = {
                "voice": voice,
                "lang": lang,
                "packaged": scores[0],
                "nudged": scores[1:],
                "mean": round(statistics.mean(scores), 3),
                "sd": round(statistics.stdev(scores), 3),
            }
            rows.append(row)
            print(row, flush=True)
    pooled_sd = float(np.sqrt(np.mean([r["sd"] ** 2 for r in rows])))  # type: ignore[operator]
    result = {
        "benchmark": "dnsmos_spread",
        "machine": machine(),
        "nudge": NUDGE,
        "nudges": args.nudges,
        "eval_sentences": {lang: EVAL_SENTENCES[lang] for lang in LANGUAGES},
        "rows": rows,
        # The noise of one voice's 3-sentence figure, pooled over voices and languages.
        "pooled_sd": round(pooled_sd, 3),
        "largest_sd": max(r["sd"] for r in rows),  # type: ignore[type-var]
    }
    print(f"DNSMOS OVRL of one 3-sentence render: pooled sd {pooled_sd:.3f} over {len(rows)} voices x languages "
          f"(largest {result['largest_sd']})")
    print("written to", write_result(args.name, result))


if __name__ == "__main__":
    main()
