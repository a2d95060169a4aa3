"""What the fit's checks for the server's renders cost the fit (synth.yielding), in CPU seconds of its budget.

A fit of fixed step counts (so both arms do the same work), in this process on one thread, with and without
the checks between tensor operations, in alternating order. The count it follows stays at zero and its job is never
cancelled: what is measured is the checks alone (the render count and the cancelled jobs read, as a served fit
reads them), never a wait. The budget is CPU time, so this share of it is steps lost.

    python bench/fit_yield_overhead.py [--pairs 3] [--steps 4,8,8]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402

VOICES = Path(__file__).resolve().parent.parent / "tests" / "data" / "voices"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", default="4,8,8", help="PITCH,STYLE,LAYERS steps of each fit")
    parser.add_argument("--name", default="fit_yield_overhead")
    args = parser.parse_args()

    import torch

    from synth import yielding
    from synth.audio_io import decode_audio
    from synth.enroll import features, quality
    from synth.fit.stock import stock_packs
    from synth.fit.style_fit import FitSettings, StepCounts, fit_style
    from synth.fit.warm_up import warm_up

    torch.set_num_threads(1)
    pcm = decode_audio((VOICES / "en_1998_enroll.wav").read_bytes(), sample_rate=24000)
    target = features.extract(quality.assess(pcm)[1], "en")
    start = stock_packs()[sorted(stock_packs())[0]]
    settings = FitSettings(steps=StepCounts.parse(args.steps))
    warm_up(("en",))
    context = multiprocessing.get_context("spawn")
    count, cancels = yielding.RenderCount(context), yielding.CancelledJobs(context)
    yielding.follow(count.shared, cancels.ids)

    def one_fit(checked: bool) -> float:
        began = time.process_time()
        with yielding.running_job(1), yielding.checks_between_operations() if checked else contextlib.nullcontext():
            fit_style(target, start, progress=lambda f, s: None, cpu_budget_s=1e6, settings=settings)
        return time.process_time() - began

    one_fit(False)  # first-call costs out of the way
    plain: list[float] = []
    checked: list[float] = []
    for pair in range(args.pairs):
        for arm in (True, False) if pair % 2 else (False, True):
            (checked if arm else plain).append(one_fit(arm))
        print(f"pair {pair + 1}: plain {plain[-1]:.2f} CPU-s, checked {checked[-1]:.2f} CPU-s", flush=True)
    ratios = [c / p for c, p in zip(checked, plain, strict=True)]
    summary = {
        "plain_cpu_s_median": statistics.median(plain),
        "checked_cpu_s_median": statistics.median(checked),
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
    }
    print(summary)
    path = write_result(args.name, {"benchmark": "fit-yield-overhead", "machine": machine(), "args": vars(args),
                                    "plain_cpu_s": plain, "checked_cpu_s": checked, "summary": summary})
    print("written to", path)


if __name__ == "__main__":
    main()
