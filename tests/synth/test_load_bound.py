"""The lower bound on failing messages (bench/load_bound.py): it must count what no scheduler could avoid, and never
more than a real policy fails on the same traffic."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bench.load_bound import bound_run, fewest_failures, most_over_disjoint, work_due
from bench.queue_sim import POLICIES, Simulation

FIRST_PIECE_S = 0.2


def message(first_cost: float = 0.5, rest_cost: float = 0.4, audio_s: float = 1.0) -> dict[str, Any]:
    """Two clauses of `audio_s` seconds each, the first heard from a first piece that costs 0.2 s."""
    return {"clauses": [
        {"speech_s": audio_s, "audio_before_s": 0.0, "pause_after_s": 0.2, "cost_s": first_cost, "first_piece_s": 0.2,
         "audio_s": audio_s},
        {"speech_s": audio_s, "audio_before_s": audio_s + 0.2, "pause_after_s": 0.0, "cost_s": rest_cost,
         "first_piece_s": None, "audio_s": audio_s},
    ]}


def test_work_due_counts_each_clause_by_the_end_of_its_audio_and_a_first_piece_by_its_start() -> None:
    steps = work_due(10.0, message(), first_audio_s=1.5, first_piece_s=FIRST_PIECE_S)
    # Heard at 11.5; the listener's 200 ms buffer; the first clause plays 1 s, then a 0.2 s pause.
    expected = [(11.5, 0.2), (12.7, 0.5), (12.9, 0.7), (13.9, 0.9)]
    assert [x for step in steps for x in step] == pytest.approx([x for step in expected for x in step])


def test_fewest_failures_drops_the_largest_first() -> None:
    assert fewest_failures([1.0, 3.0, 0.5], room=4.5) == 0
    assert fewest_failures([1.0, 3.0, 0.5], room=2.0) == 1  # dropping the 3 s one is enough
    assert fewest_failures([1.0, 1.0, 1.0], room=0.5) == 3


def test_disjoint_windows_add_up_and_overlapping_ones_do_not() -> None:
    assert most_over_disjoint([(0.0, 5.0, 2), (5.0, 9.0, 1), (3.0, 7.0, 2)]) == 3
    assert most_over_disjoint([(0.0, 5.0, 1), (3.0, 7.0, 4)]) == 4


def test_messages_that_fit_fail_none_and_a_burst_beyond_the_engine_must_fail() -> None:
    spaced = [(float(t), message()) for t in range(0, 60, 3)]
    assert bound_run(spaced, 1.5, FIRST_PIECE_S, speed=1.0, longest_s=40)["must_fail"] == 0
    # Ten messages at once, 0.9 s of work each: by 1.5 s + 0.2 s + 2.2 s of audio only ~3.9 s of work fits,
    # so at least six of them are late or gap whatever the order.
    burst = [(0.0, message()) for _ in range(10)]
    assert bound_run(burst, 1.5, FIRST_PIECE_S, speed=1.0, longest_s=40)["must_fail"] == 6
    # A faster engine fits more of the same burst; cached replies (None) cost nothing.
    assert bound_run(burst + [(0.0, None)], 1.5, FIRST_PIECE_S, speed=2.0, longest_s=40)["must_fail"] == 2
    # The order messages are listed in does not matter, only when they were sent.
    mixed = spaced + [(31.0, message()) for _ in range(10)]
    in_order = bound_run(sorted(mixed, key=lambda m: m[0]), 1.5, FIRST_PIECE_S, speed=1.0, longest_s=40)
    assert in_order["must_fail"] >= 6
    assert bound_run(mixed[::-1], 1.5, FIRST_PIECE_S, speed=1.0, longest_s=40) == in_order


def test_the_bound_stays_below_what_the_servers_policy_fails_on_the_same_traffic() -> None:
    rng = random.Random(5)
    for rate in (0.9, 1.3, 1.8):
        arrivals, at = [], rng.expovariate(rate)
        while at < 120:
            arrivals.append((at, message(rest_cost=0.4 * rng.lognormvariate(0, 0.3))))
            at += rng.expovariate(rate)
        bound = bound_run(arrivals, 1.5, FIRST_PIECE_S, speed=1.0, longest_s=40)["must_fail"]
        server = Simulation(POLICIES["server"], slowdown=1.0).run(arrivals)
        assert bound <= server["refused"] + server["gapped"] + server["heard_after_1_5_s"]
        if rate > 1.5:  # 1.6 s of work per second: beyond the engine, the bound alone says many must fail
            assert bound > 0.2 * len(arrivals)
