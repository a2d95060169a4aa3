"""How a voice fit splits its CPU budget between the style and the colour."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from synth.enroll import judge, render, tasks
from synth.fit import colour_fit
from synth.fit.stock import stock_packs


def busy(cpu_s: float) -> None:
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass


TOO_LONG_S = tasks.COLOUR_CPU_S - tasks.COLOUR_MIN_CPU_S + 1.0  # an overrun that leaves less than the colour needs


@pytest.mark.parametrize(("overrun_s", "coloured"), [(1.0, True), (TOO_LONG_S, False)])
def test_a_style_fit_that_overran_its_share_a_little_still_leaves_the_voice_its_colour(
    monkeypatch: pytest.MonkeyPatch, overrun_s: float, coloured: bool
) -> None:
    pack = next(iter(stock_packs().values()))
    budget_s = tasks.COLOUR_CPU_S + 1.0
    style_budgets: list[float] = []
    colour_deadlines: list[float] = []

    def style_fit_that_overruns(target: Any, start: np.ndarray, *, cpu_budget_s: float, **_: Any) -> Any:
        style_budgets.append(cpu_budget_s)
        busy(cpu_budget_s + overrun_s)  # its last step ended past its share, as a step or a guard score can
        return SimpleNamespace(pack=start, layers=None, denoise=0.0)

    def colour(target: Any, fitted_pack: np.ndarray, *, layers: Any, deadline: float) -> Any:
        colour_deadlines.append(deadline)
        return SimpleNamespace(taps=np.ones(8, np.float32), guard=SimpleNamespace(scale=1.0))

    monkeypatch.setattr(tasks, "load_fit_function", lambda: (style_fit_that_overruns, "gradient-fit"))
    monkeypatch.setattr(tasks.FitTarget, "from_arrays", staticmethod(lambda arrays, lang: None))
    monkeypatch.setattr(colour_fit, "fit_colour", colour)
    # The scoring after the fit is the judge's, tested with the real fit; here only the budget's split is.
    monkeypatch.setattr(render, "render", lambda *args: np.zeros(24000, np.float32))
    monkeypatch.setattr(judge, "embed_speech_of", lambda audio, rate: np.ones(4, np.float32))
    monkeypatch.setattr(judge, "cosine", lambda a, b: 0.5)

    started = time.process_time()
    result = tasks.fit_voice({}, "en", pack, np.ones(4, np.float32), budget_s, progress=lambda f, s: None)

    assert style_budgets == [pytest.approx(budget_s - tasks.COLOUR_CPU_S)]
    if coloured:
        # The colour's quality checks end with the whole budget, whenever the style ended.
        assert colour_deadlines == [pytest.approx(started + budget_s, abs=0.05)]
        assert result.colour is not None and result.colour_share == 1.0
    else:  # too little left to show a colour sounds clean: none, and the status says the fit left no time
        assert colour_deadlines == []
        assert result.colour is None and result.colour_share is None
