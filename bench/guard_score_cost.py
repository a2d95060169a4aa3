"""What does one quality-guard score cost, the first and the later ones, in a fresh process?

The style fit times its first guard score (the start pack's) and keeps back that many CPU-seconds for
each share the guard may try. If the first score also loads the engine and DNSMOS, the fit gives up
fitting time the guard never uses. `served_quality` loads both before it returns; this measures, in a
fresh process for each language, the CPU-seconds of making the scorer, of its first score and of the
next ones.

    python bench/guard_score_cost.py [--repeats 4] [--out guard_score_cost]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402


def measure(language: str, repeats: int) -> dict[str, object]:
    """In this process (fresh): CPU-s to make the scorer, then of each of `repeats` scores of a stock pack."""
    import torch

    torch.set_num_threads(1)
    from synth.enroll import render
    from synth.enroll.contract import FittedStyle
    from synth.fit.quality_guard import served_quality

    pack = next(iter(render.stock_packs().values()))
    started = time.process_time()
    score = served_quality(language)
    made = time.process_time() - started
    costs = []
    for _ in range(repeats):
        started = time.process_time()
        score(FittedStyle(pack))
        costs.append(time.process_time() - started)
    return {"make_scorer_cpu_s": round(made, 2), "score_cpu_s": [round(c, 2) for c in costs]}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", default="guard_score_cost", help="results name under bench/results/")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: measure one language, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.repeats)))
        return
    rows = {}
    for language in ("en", "zh", "ja"):
        run = subprocess.run([sys.executable, __file__, "--one", language, "--repeats", str(args.repeats)],
                             check=True, capture_output=True, text=True)
        row = json.loads(run.stdout.strip().splitlines()[-1])
        later = float(np.median(row["score_cpu_s"][1:]))
        row["first_over_later"] = round(row["score_cpu_s"][0] / later, 3)
        rows[language] = row
        print(f"{language}: scorer {row['make_scorer_cpu_s']} CPU-s, scores {row['score_cpu_s']}", flush=True)
    result = {
        "what": "CPU-seconds of served_quality() (which loads the engine and DNSMOS) and of each score after it, "
                "in a fresh process per language; the fit budgets the guard by the first score",
        "languages": rows,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
