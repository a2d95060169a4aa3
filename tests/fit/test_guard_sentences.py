"""bench/guard_sentences.py sizes the style guard from how a voice's DNSMOS change spreads between sentences: its
summary must be the arithmetic it claims."""

from __future__ import annotations

import numpy as np
import pytest

from bench.guard_sentences import speaker_row, summarise


def test_the_spread_between_sentences_sizes_the_guard() -> None:
    eighteen = np.array([0.1, -0.1] * 9)  # spread (SD) 0.1029, mean 0
    rows = [
        speaker_row("a", [1.0, 1.0], np.array([0.05, 0.15]), eighteen),
        speaker_row("b", [0.6, 0.6], np.array([-0.2, -0.2]), eighteen - 0.05),
        speaker_row("c", [1.0, 0.0], np.array([0.25, 0.1]), eighteen + 0.1),
    ]
    assert rows[0]["guard_mean"] == pytest.approx(0.1) and rows[0]["mean_of_eighteen"] == pytest.approx(0.0)
    summary = summarise(rows)
    spread = float(eighteen.std(ddof=1))
    assert summary["median_spread_between_sentences"] == pytest.approx(spread, abs=1e-3)
    assert summary["standard_error_of_two"] == pytest.approx(spread / np.sqrt(2), abs=1e-3)
    assert summary["sentences_for_standard_error_0.05"] == 5  # (0.1029 / 0.05) ** 2 = 4.2
    assert summary["mean_guard_minus_eighteen"] == pytest.approx((0.1 - 0.15 + 0.075) / 3, abs=1e-3)
    assert summary["guard_off_by_more_than_0.1"] == ["b"]  # off by 0.15; a by 0.1, c by 0.075
    assert summary["guard_mean_vs_mean_of_eighteen"] == pytest.approx(
        np.corrcoef([0.1, -0.2, 0.175], [0.0, -0.05, 0.1])[0, 1], abs=1e-3)
