"""bench/more_sentences.py measures P.835 on sentences nothing else says: they must stay held out, and its paired
summary must be the arithmetic it claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.more_sentences import MORE_PASSAGES, MORE_SENTENCES, PER_PASSAGE, passages, summarise
from bench.voice_similarity import EVAL_SENTENCES
from synth.enroll.render import TEST_SENTENCES
from synth.fit.quality_guard import GUARD_MORE_SENTENCES, GUARD_SECOND_SENTENCES
from synth.fit.style_fit import TRAINING_SENTENCES


@pytest.mark.parametrize("lang", ["en", "zh", "ja"])
def test_the_more_sentences_are_said_nowhere_else(lang: str) -> None:
    said_elsewhere = {*TRAINING_SENTENCES[lang], GUARD_SECOND_SENTENCES[lang], TEST_SENTENCES[lang],
                      *EVAL_SENTENCES[lang], *GUARD_MORE_SENTENCES[lang]}
    assert len(set(MORE_SENTENCES[lang])) == len(MORE_SENTENCES[lang]) == MORE_PASSAGES * PER_PASSAGE
    assert not said_elsewhere & set(MORE_SENTENCES[lang])
    spoken = passages(lang)
    assert spoken[0] == EVAL_SENTENCES[lang]  # passage 0 reproduces the benchmark's own row
    assert [len(p) for p in spoken] == [PER_PASSAGE] * (1 + MORE_PASSAGES)


def voice(p835: list[float]) -> dict[str, Any]:
    scored = [{"p835": x, "p808": 4.0, "similarity": 0.5, "top1": True} for x in p835]
    return {"passages": scored, "mean": {"p835": sum(p835) / len(p835)}}


def test_served_minus_stock_is_paired_by_passage_and_by_speaker() -> None:
    n = 1 + MORE_PASSAGES
    rows = [
        {"speaker": "a", "stock": voice([3.0] * n), "served": voice([3.1] * n)},
        {"speaker": "b", "stock": voice([3.2] * n), "served": voice([3.0] + [3.3] * (n - 1))},
    ]
    paired = summarise(rows)["served_minus_stock_p835"]
    assert paired["by_passage"][0] == pytest.approx((0.1 - 0.2) / 2)
    assert paired["by_passage"][1] == pytest.approx((0.1 + 0.1) / 2)
    b_change = (-0.2 + 0.1 * (n - 1)) / n
    assert paired["all_passages"] == pytest.approx((0.1 + b_change) / 2, abs=1e-4)
    assert paired["all_passages_standard_error"] == pytest.approx(abs(0.1 - b_change) / 2, abs=1e-4)
    assert paired["by_speaker"] == {"a": pytest.approx(0.1), "b": pytest.approx(b_change, abs=1e-4)}


def test_every_voice_is_paired_with_stock() -> None:
    n = 1 + MORE_PASSAGES
    rows = [
        {"speaker": "a", "stock": voice([3.0] * n), "served": voice([3.1] * n), "served_guard_0.1": voice([2.9] * n)},
        {"speaker": "b", "stock": voice([3.2] * n), "served": voice([3.2] * n)},
    ]
    summary = summarise(rows)
    assert "stock_minus_stock_p835" not in summary
    assert summary["served_minus_stock_p835"]["all_passages"] == pytest.approx(0.05)
    looser = summary["served_guard_0.1_minus_stock_p835"]  # paired only where both were scored
    assert looser["by_speaker"] == {"a": pytest.approx(-0.1)}
    assert looser["all_passages_standard_error"] is None


def test_a_saved_whole_fit_is_read_as_the_run_wrote_it(tmp_path: Any) -> None:
    import numpy as np

    from bench.voice_similarity import saved_whole_fit

    pack, layers = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((4, 2), np.float32)
    np.save(tmp_path / "en_a.offered.npy", pack)
    np.save(tmp_path / "en_a.offered.layers.npy", layers)
    np.save(tmp_path / "en_b.offered.npy", pack)  # a whole fit without per-layer timbre
    a, b = saved_whole_fit(tmp_path, "en_a"), saved_whole_fit(tmp_path, "en_b")
    assert a is not None and np.array_equal(a.pack, pack) and np.array_equal(a.layers, layers)
    assert b is not None and np.array_equal(b.pack, pack) and b.layers is None
    assert saved_whole_fit(tmp_path, "en_c") is None


def test_saved_rows_are_those_of_the_speakers_asked_for() -> None:
    from bench.voice_similarity import saved_rows

    every = saved_rows("voice_similarity_s37_tol02")
    assert len(every) == 9
    assert [row["speaker"] for row in saved_rows("voice_similarity_s37_tol02", "zh_S0764,en_533")] == [
        "en_533", "zh_S0764"]


def test_the_voices_another_guard_would_serve_are_named_by_its_policy(tmp_path: Path, monkeypatch: Any) -> None:
    import json

    import bench.more_sentences as more_sentences
    from tests.fit.test_guard_replay import ROW

    (tmp_path / "replay.json").write_text(json.dumps({"speakers": [ROW]}))
    monkeypatch.setattr(more_sentences, "RESULTS", tmp_path)
    kept = more_sentences.kept_shares("replay", "0.1,0.3", "mean_of_2,six_near_the_line")
    # The served rule keeps the whole fit on its two sentences; six sentences near the line turn it away at 0.1.
    assert kept == {
        "served_guard_0.1": {"en_x": (1.0, 1.0)}, "served_guard_0.3": {"en_x": (1.0, 1.0)},
        "six_near_the_line_guard_0.1": {"en_x": (0.6, 0.6)}, "six_near_the_line_guard_0.3": {"en_x": (1.0, 1.0)},
    }
    assert more_sentences.kept_shares("replay", "0.1") == {"served_guard_0.1": {"en_x": (1.0, 1.0)}}
