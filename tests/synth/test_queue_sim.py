"""The queue simulation (bench/queue_sim.py) that chose the continuation cushion and the streaming of late
continuations: it must tell a quiet queue from an overloaded one the way the server's admission does."""

from __future__ import annotations

import random
from typing import Any

from bench.queue_sim import POLICIES, Simulation, policy_from


def message(first_cost: float = 0.5, rest_cost: float = 0.4) -> dict[str, Any]:
    """Two clauses of a second of audio each: the first streamed (first piece after 0.2 s), the second whole."""
    return {"clauses": [
        {"speech_s": 1.0, "audio_before_s": 0.0, "pause_after_s": 0.2, "cost_s": first_cost, "first_piece_s": 0.2,
         "audio_s": 1.0},
        {"speech_s": 1.0, "audio_before_s": 1.2, "pause_after_s": 0.0, "cost_s": rest_cost, "first_piece_s": None,
         "audio_s": 1.0},
    ]}


def poisson(rate: float, seconds: float, seed: int = 1) -> list[tuple[float, dict[str, Any] | None]]:
    rng = random.Random(seed)
    arrivals, at = [], rng.expovariate(rate)
    while at < seconds:
        arrivals.append((at, message()))
        at += rng.expovariate(rate)
    return arrivals


def test_a_quiet_queue_admits_everything_on_time() -> None:
    arrivals = [(float(t), message()) for t in range(0, 60, 3)]  # 0.9 s of work every 3 s
    result = Simulation(POLICIES["server"], slowdown=1.0).run(arrivals)
    assert (result["refused"], result["gapped"]) == (0, 0)
    assert 180 <= result["ttfa_p50_ms"] <= 300  # the first piece (0.2 s), nothing waited for


def test_past_capacity_admission_refuses_where_admitting_everything_gaps_and_waits() -> None:
    arrivals = poisson(rate=1.6, seconds=120)  # 1.44 s of work per wall second
    everything = Simulation(POLICIES["admit_all"], slowdown=1.0).run(arrivals)
    admitted = Simulation(POLICIES["server"], slowdown=1.0).run(arrivals)
    assert everything["refused"] == 0 and everything["gapped_share_of_accepted"] > 0.3
    assert everything["ttfa_p95_ms"] > 5000  # the queue only grows
    assert admitted["refused_share"] > 0.2
    assert admitted["gapped_share_of_accepted"] < 0.05 and admitted["ttfa_p95_ms"] < 2000


def test_the_cushion_trades_refusals_for_gaps_when_calls_run_long() -> None:
    # Continuations cost 0.4 s times a log-normal factor (sigma 0.4): the cost model learns the average, and some
    # calls run well past it. Counting them 1.3 times in admission and the hold keeps more streams whole.
    rng = random.Random(3)
    arrivals = [(at, message(rest_cost=0.4 * rng.lognormvariate(0, 0.4))) for at, _ in poisson(0.9, 300, seed=2)]
    bare = Simulation(POLICIES["no_cushion"], slowdown=1.0).run(arrivals)
    cushioned = Simulation(POLICIES["no_rescue"], slowdown=1.0).run(arrivals)
    assert cushioned["gapped"] < bare["gapped"]
    assert cushioned["refused"] >= bare["refused"]


def test_streaming_a_continuation_that_would_run_dry_removes_gaps_without_refusing_more() -> None:
    # As above; a continuation that starts too late to be ready whole is heard from its first piece instead.
    rng = random.Random(3)
    arrivals = [(at, message(rest_cost=0.4 * rng.lognormvariate(0, 0.4))) for at, _ in poisson(0.9, 300, seed=2)]
    whole = Simulation(POLICIES["no_rescue"], slowdown=1.0).run(arrivals)
    rescued = Simulation(POLICIES["server"], slowdown=1.0).run(arrivals)
    assert whole["streamed_continuations"] == 0 and 0 < rescued["streamed_continuations"] < rescued["continuations"]
    assert rescued["gapped"] <= whole["gapped"] / 2
    assert abs(rescued["refused"] - whole["refused"]) <= 0.05 * len(arrivals)


def test_a_policy_variant_is_named_by_its_changes() -> None:
    policy = policy_from("server:cushion=1.0:window_s=0.2:admission=False")
    assert (policy.cushion, policy.window_s, policy.admission) == (1.0, 0.2, False)
    assert policy.name == "server:cushion=1.0:window_s=0.2:admission=False"
