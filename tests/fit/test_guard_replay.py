"""bench/guard_replay.py replays guards that hear more sentences than the served one: each must decide on the
sentences it claims to hear, and count what hearing them would cost."""

from __future__ import annotations

from typing import Any

import pytest

from bench.guard_replay import heard_changes, more_guard_sentences, sentences_heard


def share(label: tuple[float, float], two: list[float], more: list[float], similarity: float, p835: float) -> Any:
    bench = {"normalised": similarity, "top1": similarity > 0.4, "dnsmos_ovrl": p835, "dnsmos_p808": 4.0}
    return {"share": list(label), "guard_each": two, "guard_each_more": more, "bench": bench}


# One speaker: the whole fit sounds clean on the guard's two sentences (mean -0.05) and rasps on the four more;
# the (60, 60)% share sounds like the start on all six.
ROW = {"speaker": "en_x", "shares": [
    share((0.0, 0.0), [3.0, 3.0], [3.0] * 4, 0.3, 3.2),
    share((1.0, 1.0), [3.0, 2.9], [2.5] * 4, 0.6, 3.0),
    share((0.6, 0.6), [3.0, 3.0], [3.0] * 4, 0.5, 3.2),
]}


def kept(policies: dict[str, Any], name: str, tolerance: float) -> tuple[list[float], int, list[str]]:
    policy = next(p for p in policies[f"policies_{name}_on_bench"] if p["tolerance"] == tolerance)
    return policy["kept"][0]["kept"], policy["guard_sentences_heard"], policy["more_than_0.05_below_start"]


def test_each_guard_decides_on_the_sentences_it_hears() -> None:
    policies = more_guard_sentences([ROW], "0.1,0.3")
    # Two sentences keep the whole fit (two heard for the start and two for it: 4), and it pays 0.2 P.835.
    assert kept(policies, "mean_of_2", 0.1) == ([1.0, 1.0], 4, ["en_x"])
    # Four: (0 - 0.1 - 0.5 - 0.5) / 4 is far below the line; six likewise. Both go on to the (60, 60)% share.
    assert kept(policies, "mean_of_4", 0.1) == ([0.6, 0.6], 12, [])
    assert kept(policies, "mean_of_6", 0.1) == ([0.6, 0.6], 18, [])
    # Near the line (-0.05 against -0.1, within one standard error) the sequential guard hears all six and
    # turns the whole fit away; the (60, 60)% share's two (0 against -0.1) are near the line too.
    assert kept(policies, "six_near_the_line", 0.1) == ([0.6, 0.6], 2 * 3 + 4 * 3, [])
    # Far from the line (-0.05 against -0.3) its two decide, as the served guard's do.
    assert kept(policies, "six_near_the_line", 0.3) == ([1.0, 1.0], 4, ["en_x"])


def test_a_replay_without_the_more_sentences_cannot_judge_on_them() -> None:
    start, whole = ({k: v for k, v in s.items() if k != "guard_each_more"} for s in ROW["shares"][:2])
    assert heard_changes(start, whole, 2) == pytest.approx([0.0, -0.1])
    with pytest.raises(ValueError, match="--more-guard-sentences"):
        heard_changes(start, whole, 4)


def test_the_sentences_heard_count_the_starts_more_sentences_once() -> None:
    # Two shares tried, both near the line at 0.1: the start's four more are heard once, each share's once.
    assert sentences_heard(ROW, 2, None, 0.1) == 2 * 3 + 4 * 3
    assert sentences_heard(ROW, 2, None, 1.0) == 2 * 3  # no verdict near the line
    assert sentences_heard(ROW, 6, 4, 0.1) == 4 * 7
