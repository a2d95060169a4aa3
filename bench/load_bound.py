"""Could any scheduler meet the load goals? A lower bound on the messages that must fail, on measured costs.

`bench/queue_sim.py` replays the server's own policy (and variants of it) on measured render costs; it says
what those policies do, not what no policy could do. This bounds every policy at once. A message *fails* if it
is refused, heard more than `--first-audio` seconds after it was sent, or has a gap. The goals at 80% of capacity
(no refusals, no gaps, p95 time to first audio at most 1.5 s) allow at most 5% of the messages sent to fail.

The bound is a relaxation, so it favours the scheduler everywhere it simplifies:
- the engine is one processor that can be pre-empted at any instant and split between clauses at will (a
  worker that renders clauses whole, as the real one does, can only do worse);
- the scheduler knows every clause's exact cost and every future arrival;
- a message's playback starts as late as its first-audio limit allows (latest start = most slack);
- a clause only has to be finished by the *end* of its own audio, and its first piece by the start of it; a
  first piece costs the measured one for first clauses, and for a continuation the cheapest first piece measured
  on any clause (about 0.2 s: text to phonemes, the predictor and one decoder window);
- a message that fails costs nothing (its work is simply dropped), and the engine is idle when a window opens.

Then in any window of time [t1, t2] the work of the messages sent in it that is due inside it must fit in
t2 - t1 seconds, or some of them fail: at least as many as it takes, largest first, to bring the work down to
the window's length. Messages sent in disjoint windows are different messages, so the counts of disjoint windows
add up; the best set of disjoint windows is found by weighted interval scheduling.

    python bench/load_bound.py --shares 0.6,0.7,0.8   # on the costs of python bench/queue_sim.py measure
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402
from bench.load import JITTER_BUFFER_S  # noqa: E402
from bench.queue_sim import PROFILE, rendering_per_message, traffic  # noqa: E402

Step = tuple[float, float]  # (deadline, work that must be done by then, counted from the message's arrival)


def cheapest_first_piece(profile: dict[str, Any]) -> float:
    return min(c["first_piece_s"] for m in profile["messages"] for c in m["clauses"] if c["first_piece_s"])


def work_due(arrived: float, message: dict[str, Any], first_audio_s: float, first_piece_s: float) -> list[Step]:
    """The message's cumulative work deadlines if it is heard at `arrived + first_audio_s` with no gap."""
    clauses = message["clauses"]
    start = arrived + first_audio_s
    first = clauses[0]
    steps = [(start, min(first["first_piece_s"] or first["cost_s"], first["cost_s"]))]
    done, heard = 0.0, 0.0
    for index, clause in enumerate(clauses):
        if index:  # some of it plays at the start of its audio (after the listener's buffer)
            steps.append((start + JITTER_BUFFER_S + heard, done + min(first_piece_s, clause["cost_s"])))
        done += clause["cost_s"]
        # Its last sample plays at the end of its audio: all of it is rendered by then, however it was streamed.
        steps.append((start + JITTER_BUFFER_S + heard + clause["audio_s"], done))
        heard += clause["audio_s"] + clause["pause_after_s"]
    return steps


def fewest_failures(work: list[float], room: float) -> int:
    """How many messages must go (largest work first) before the rest fits in `room` seconds of compute."""
    excess = sum(work) - room
    count = 0
    for w in sorted(work, reverse=True):
        if excess <= 1e-9:
            break
        excess -= w
        count += 1
    return count


def window_failures(messages: list[tuple[float, list[Step]]], speed: float, longest_s: float
                    ) -> list[tuple[float, float, int]]:
    """(t1, t2, failures) for every window that forces at least one failure: t1 an arrival, t2 a deadline."""
    windows = []
    for t1, _ in messages:
        # Every deadline of the messages sent from t1 on, in time order, with the message it belongs to.
        events = sorted((deadline, j, work) for j, (sent, steps) in enumerate(messages) if t1 <= sent <= t1 + longest_s
                        for deadline, work in steps if deadline - t1 <= longest_s)
        due: dict[int, float] = {}
        total = 0.0
        for t2, j, work in events:
            total += work - due.get(j, 0.0)
            due[j] = work
            room = speed * (t2 - t1)
            if total > room + 1e-9:
                windows.append((t1, t2, fewest_failures(list(due.values()), room)))
    return windows


def most_over_disjoint(windows: list[tuple[float, float, int]]) -> int:
    """The largest sum of failures over windows that do not overlap (weighted interval scheduling)."""
    windows = sorted(windows, key=lambda w: w[1])
    ends = [w[1] for w in windows]
    best = [0] * (len(windows) + 1)  # best[k]: using the first k windows (by end)
    for k, (t1, _, failures) in enumerate(windows, 1):
        before = bisect.bisect_right(ends, t1, 0, k - 1)  # windows ending by t1
        best[k] = max(best[k - 1], best[before] + failures)
    return best[-1]


def bound_run(arrivals: list[tuple[float, dict[str, Any] | None]], first_audio_s: float, first_piece_s: float,
              speed: float, longest_s: float) -> dict[str, Any]:
    rendered = [(at, work_due(at, message, first_audio_s, first_piece_s))
                for at, message in arrivals if message is not None]
    failures = most_over_disjoint(window_failures(rendered, speed, longest_s))
    return {"sent": len(arrivals), "rendered": len(rendered), "must_fail": failures,
            "must_fail_share": round(failures / max(1, len(arrivals)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shares", default="0.8", help="offered compute as shares of capacity, comma-separated")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--runs", type=int, default=40, help="traffic seeds (the same as queue_sim.py's)")
    parser.add_argument("--repeat-rate", type=float, default=0.35)
    parser.add_argument("--first-audio", type=float, default=1.5, help="the p95 time-to-first-audio goal, seconds")
    parser.add_argument("--allowed", type=float, default=0.05, help="share of messages the p95 goal lets be late")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="engine speed against the profile's (e.g. 1.48: two one-thread workers' throughput)")
    parser.add_argument("--longest-window", type=float, default=40.0, help="seconds; longer windows are not tried")
    parser.add_argument("--profile", type=Path, default=PROFILE, help="render costs (bench/queue_sim.py measure)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--name", default="load_bound")
    args = parser.parse_args()

    profile = json.loads(args.profile.read_text())
    compute_per_message, audio_per_message = rendering_per_message(profile, args.repeat_rate, 1.0)
    first_piece_s = cheapest_first_piece(profile)
    levels = {}
    for share in [float(x) for x in args.shares.split(",")]:
        # The offered load as queue_sim.py and load.py size it: compute per wall second = share of the engine.
        rate = share * args.speed / compute_per_message
        runs = []
        for seed in range(args.seed, args.seed + args.runs):
            arrivals = traffic(profile, rate, args.seconds, args.repeat_rate, seed)
            runs.append({"seed": seed, **bound_run(arrivals, args.first_audio, first_piece_s, args.speed,
                                                     args.longest_window)})
        sent = sum(run["sent"] for run in runs)
        must_fail = sum(run["must_fail"] for run in runs)
        impossible = sum(1 for run in runs if run["must_fail"] > args.allowed * run["sent"])
        levels[str(share)] = {
            "offered_msgs_per_s": round(rate, 3),
            "must_fail_share_pooled": round(must_fail / max(1, sent), 4),
            "must_fail_share_median": statistics.median(run["must_fail_share"] for run in runs),
            "runs_where_goals_impossible": f"{impossible}/{len(runs)}",
            "sent": sent,
            "must_fail": must_fail,
            "runs": runs,
        }
        print(f"{share:.0%} of capacity ({rate:.3f} messages/s, speed {args.speed}): at least "
              f"{must_fail / max(1, sent):.1%} of messages refused, late or gapped under any scheduler (median run "
              f"{levels[str(share)]['must_fail_share_median']:.1%}); the goals allow {args.allowed:.0%}: out of reach "
              f"in {impossible} of {len(runs)} runs", flush=True)
    write_result(args.name, {
        "benchmark": "load_bound",
        "machine": machine(),
        "profile_machine": profile["machine"],
        "args": {**vars(args), "profile": args.profile.name},
        "cheapest_first_piece_s": first_piece_s,
        "capacity_audio_s_per_wall_s": round(args.speed * audio_per_message / compute_per_message, 3),
        "levels": levels,
    })


if __name__ == "__main__":
    main()
