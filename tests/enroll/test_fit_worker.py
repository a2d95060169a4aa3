"""The fit process loads what a fit needs before the fit's budget clock starts, and only what it needs."""

from __future__ import annotations

from typing import Any

from synth.enroll.jobs import EnrollmentWorkers
from synth.enroll.quality import GateLimits
from synth.fit.stock import stock_packs
from tests.enroll.conftest import voice_path

MODELS = ("serving engine", "DNSMOS", "differentiable graph", "fitting encoder", "judge", "stock space")
NOTHING = dict.fromkeys(MODELS, 0)
LOADED = dict.fromkeys(MODELS, 1)


def loaded_in_this_process(job_id: int) -> dict[str, Any]:
    """What the fit reads from its process's caches (runs in a worker process, as a job)."""
    from synth.enroll import dnsmos, judge, render
    from synth.fit import kokoro_torch, resemblyzer_torch, style_fit

    g2p = style_fit._g2p() if style_fit._g2p.cache_info().currsize else None
    return {
        "serving engine": render._engine.cache_info().currsize,
        "DNSMOS": dnsmos._session.cache_info().currsize,
        "differentiable graph": kokoro_torch.graph.cache_info().currsize,
        "fitting encoder": resemblyzer_torch._encoder.cache_info().currsize,
        "judge": judge._session.cache_info().currsize,
        "stock space": style_fit.stock_space.cache_info().currsize,
        "front ends": {
            "en": bool(g2p and g2p._en_ready), "zh": bool(g2p and g2p._zh), "ja": bool(g2p and g2p._ja)
        },
    }


async def test_each_fit_loads_what_it_needs_outside_its_budget_and_nothing_more() -> None:
    workers = EnrollmentWorkers(niceness=0)  # its own: a shared pool may have fitted a voice already
    try:
        analysis = await workers.analyse(voice_path("en_1998_enroll.wav").read_bytes(), GateLimits(), "en")
        assert analysis.accepted
        start = stock_packs()[analysis.start_stock]

        stages: list[list[str]] = []

        async def fit(language: str) -> Any:
            seen: list[str] = []
            stages.append(seen)
            return await workers.fit(
                analysis.target, language, start, analysis.judge_print, cpu_budget_s=1.0,
                progress=lambda _fraction, stage: seen.append(stage),
            )

        assert await workers._submit("fit", loaded_in_this_process, None) == {
            **NOTHING, "front ends": {"en": False, "zh": False, "ja": False}
        }
        first, second = await fit("en"), await fit("en")
        assert await workers._submit("fit", loaded_in_this_process, None) == {
            **LOADED, "front ends": {"en": True, "zh": False, "ja": False}
        }
        # The first fit of the process loaded the models (several CPU-s on any CPU seen) before its clock started:
        # its budget clock read about what the second, warm fit's did.
        assert first.cpu_s < second.cpu_s + 1.0, (first.cpu_s, second.cpu_s)
        # The voice's progress says "loading" only while there is something to load.
        assert stages[0][:2] == ["loading the voice fit", "preparing the voice model"], stages[0]
        assert stages[1][0] == "preparing the voice model", stages[1]
        assert "loading the voice fit" not in stages[1], stages[1]

        await fit("zh")  # a Chinese voice's fit loads the Chinese front end; the Japanese one is never needed
        assert stages[2][0] == "loading the voice fit", stages[2]
        assert (await workers._submit("fit", loaded_in_this_process, None))["front ends"] == {
            "en": True, "zh": True, "ja": False
        }
        # The analysis process is not the fit's: it stays light.
        light = await workers._submit("analysis", loaded_in_this_process, None)
        assert light["differentiable graph"] == 0 and light["fitting encoder"] == 0
    finally:
        workers.close()
