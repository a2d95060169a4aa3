"""A fit whose voice the server drops (deleted, or enrolled again) stops in the fit process, and so does one queued."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from synth.enroll.jobs import EnrollmentWorkers
from synth.enroll.quality import GateLimits
from synth.yielding import CancelledJobs
from tests.enroll.conftest import cpu_seconds, fit_in_background, voice_path

# Far past this test's patience: a fit that was not stopped would hold the process for minutes.
LONG_BUDGET_S = 600.0


def process_id(job_id: int) -> int:
    """A job for the fit process that says which process ran it (it runs once the jobs before it have ended)."""
    return os.getpid()


async def test_a_cancelled_fit_stops_in_the_fit_process_and_queued_ones_never_start(
    workers: EnrollmentWorkers,
) -> None:
    analysis = await workers.analyse(voice_path("en_533_enroll.wav").read_bytes(), GateLimits(), "en")

    def fit(budget_s: float, stages: list[str]) -> asyncio.Task:  # type: ignore[type-arg]
        return fit_in_background(workers, analysis, budget_s, stages)

    await fit(1.0, [])  # the process loads its models: what follows is the fit's own work
    pid = await workers._submit("fit", process_id, None)
    running_stages: list[str] = []
    running = fit(LONG_BUDGET_S, running_stages)
    # Voices enrolled behind it: the pool hands the first to the process ahead of time, and keeps the rest.
    queued = [fit(LONG_BUDGET_S, []) for _ in range(2 * CancelledJobs.SLOTS)]
    while len(running_stages) < 2:  # past its start, into the fit's work
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)

    # The running fit first: cancelling more fits after it than there are slots for cancelled jobs must not let it
    # run on (only jobs the process holds take a slot).
    running.cancel()
    for task in queued:
        task.cancel()
    for task in (running, *queued):
        with pytest.raises(asyncio.CancelledError):
            await task
    cancelled_at, cpu_at_cancel = time.monotonic(), cpu_seconds(pid)
    # The process is free again within the engine call under way (seconds, where the two fits would take twenty
    # minutes), and it is the same process: nothing was killed, its models stay loaded.
    assert await asyncio.wait_for(workers._submit("fit", process_id, None), timeout=90) == pid
    freed_s = time.monotonic() - cancelled_at
    assert cpu_seconds(pid) - cpu_at_cancel < 60.0, freed_s
    # And the next voice's fit runs as usual.
    result = await asyncio.wait_for(fit(1.0, []), timeout=120)
    assert result is not None and result.similarity_raw is not None
