"""A server's fit process waits while the server renders speech, mid-fit, and finishes its budget afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from synth.enroll.jobs import WAITING_STAGE, EnrollmentWorkers
from synth.enroll.quality import GateLimits
from tests.enroll.conftest import cpu_seconds, fit_in_background, voice_path
from voxroom.metrics import Metrics


def scraped(metrics: Metrics) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def fit_process(workers: EnrollmentWorkers) -> int:
    (process,) = workers._pools["fit"]._processes.values()  # type: ignore[attr-defined]
    return int(process.pid)


async def test_the_fit_process_waits_while_the_server_renders_and_finishes_its_budget_after() -> None:
    workers = EnrollmentWorkers(niceness=0, yield_to_synthesis=True)
    assert workers.render_count is not None
    metrics = Metrics()
    metrics.fit_pauses.render_count = workers.render_count
    try:
        analysis = await workers.analyse(voice_path("en_1998_enroll.wav").read_bytes(), GateLimits(), "en")

        def fit(budget_s: float, stages: list[str]) -> asyncio.Task:  # type: ignore[type-arg]
            return fit_in_background(workers, analysis, budget_s, stages)

        await fit(1.0, [])  # loads the models: what follows is the fit's own work
        stages: list[str] = []
        fitting = fit(6.0, stages)
        while not stages:
            await asyncio.sleep(0.05)
        pid = fit_process(workers)
        held_from = len(stages)
        with workers.render_count.rendering():
            # An engine or quality-model call under way when the count rose runs to its end (at most a second or
            # two on one thread); then the process only looks at the count, every few milliseconds.
            await asyncio.sleep(3.5)
            before, stages_before = cpu_seconds(pid), len(stages)
            await asyncio.sleep(2.0)
            used = cpu_seconds(pid) - before
            assert not fitting.done()
            assert used < 0.25, f"the fit process ran {used:.2f} CPU-s of 2 s while the server was rendering"
            assert set(stages[stages_before:]) <= {WAITING_STAGE}, stages[stages_before:]
            # The owner's progress says why the fit stands still (once the wait has lasted a while), and so does
            # /metrics, from what the fit process writes back.
            assert WAITING_STAGE in stages[held_from:], stages[held_from:]
            paused = scraped(metrics)
            assert 2.0 < paused["voxroom_voice_fit_paused_now_seconds"] < 6.0, paused
            assert paused["voxroom_voice_fit_paused_seconds_total"] >= paused["voxroom_voice_fit_paused_now_seconds"]
        # It went on and finished its budget (the hold may have fallen in its last stage, scoring the new voice,
        # which tells no more stages after it).
        result = await asyncio.wait_for(fitting, timeout=300)
        assert result.similarity_raw is not None and result.cpu_s < 6.0 * 3, result.cpu_s
        after = scraped(metrics)
        assert after["voxroom_voice_fit_paused_now_seconds"] == 0.0
        assert after["voxroom_voice_fit_paused_seconds_total"] > 5.0

        # A fit process killed while it waits never ends its wait itself: the server ends it, or the gauge that
        # an alert watches would grow for ever.
        stages = []
        fitting = fit(6.0, stages)
        while not stages:
            await asyncio.sleep(0.05)
        with workers.render_count.rendering():
            while workers.render_count.paused_now_s() == 0.0:
                await asyncio.sleep(0.05)
            os.kill(fit_process(workers), signal.SIGKILL)
            with pytest.raises(concurrent.futures.process.BrokenProcessPool):
                await asyncio.wait_for(fitting, timeout=30)
            assert scraped(metrics)["voxroom_voice_fit_paused_now_seconds"] == 0.0
    finally:
        workers.close()
