"""The fit process waits while the server renders speech, so a fit does not share the cores with a room's synthesis.

Niceness alone hands a fit only the CPU that synthesis leaves free, yet a fit running beside the engine still
slowed a busy room (bench/fit_beside_load.py: the two share caches and memory). So the server counts the clauses
it is rendering in one integer in shared memory (`RenderCount`), and the fit process checks it often
(`wait_while_rendering`): between the fit's tensor operations, forward and backward (autograd's saved-tensor
hooks, `checks_between_operations`), and before each call of the engine, DNSMOS or the judge. While the count is
above zero the fit sleeps. Its budget is CPU time, so waiting costs it time on the clock, never steps.

The fit process writes back how long it has been paused, so that `/metrics` shows a fit that a saturated server
keeps standing still (`RenderCount.paused_now_s`, `paused_total_s`).

The same checks stop a fit the server no longer wants (its voice deleted or enrolled again: `CancelledJobs`), so
that a deleted voice's features do not stay in the fit process, nor its fit hold the next voice's back, for up to a
whole budget.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

# How often a waiting fit looks again: short beside a clause's render (tenths of a second), long beside the read.
POLL_S = 0.005
# A wait this long is told (`on_long_wait`): the owner's progress says why the fit stands still.
LONG_WAIT_S = 2.0

_shared: SharedRenderState | None = None  # this process's view of the server's (a fit process with a server), else None
_on_long_wait: Callable[[], None] | None = None
_cancelled: Any = None  # CancelledJobs.ids, in a fit process
_job = 0  # the job this process runs now (0: none)


class FitCancelled(Exception):
    """The server no longer wants the fit under way: its voice was deleted or enrolled again."""


class CancelledJobs:
    """The ids of fit jobs the server has dropped, in shared memory: the server writes, the fit process reads at
    each of its checks (`wait_while_rendering`) and stops the job it runs if it is among them.

    Made from the multiprocessing context that starts the fit process, and handed to it (`ids`) when it starts."""

    # The running job and the one the process pool has already handed to the process, with room to spare.
    SLOTS = 4

    def __init__(self, context: Any) -> None:
        self.ids = context.RawArray("q", self.SLOTS)  # job ids start at 1: a zero is an empty slot
        self._next = 0
        self._lock = threading.Lock()

    def cancel(self, job_id: int) -> None:
        with self._lock:
            self.ids[self._next % self.SLOTS] = job_id
            self._next += 1


class SharedRenderState(NamedTuple):
    """The shared memory between the server and its fit process; each value has one writer."""

    count: Any  # clauses being rendered (the server writes)
    paused_since: Any  # time.monotonic() when the current wait began, 0.0 when not waiting (the fit process writes)
    paused_s: Any  # seconds of the waits that have ended (the fit process writes)


class RenderCount:
    """Clauses the server is rendering now, in shared memory that the fit process reads without a lock.

    Made from the multiprocessing context that starts the fit process, and handed to it (`shared`) when it starts."""

    def __init__(self, context: Any) -> None:
        self.shared = SharedRenderState(
            count=context.RawValue("i", 0), paused_since=context.RawValue("d", 0.0), paused_s=context.RawValue("d", 0.0)
        )
        # The scheduler counts from its event loop; the lock keeps the count right for any caller on another thread.
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def rendering(self) -> Iterator[None]:
        with self._lock:
            self.shared.count.value += 1
        try:
            yield
        finally:
            with self._lock:
                self.shared.count.value -= 1

    @property
    def value(self) -> int:
        return int(self.shared.count.value)

    def pauses(self) -> tuple[float, float]:
        """(seconds of the fit process's wait under way, 0.0 when it is not waiting; seconds of all its waits since
        the server started, that one included), from one reading.

        The ended waits are read first: the fit process clears a wait before adding it to them, so a wait that ends
        between the two reads is missed for now, never counted twice."""
        ended = float(self.shared.paused_s.value)
        since = float(self.shared.paused_since.value)
        now = max(0.0, time.monotonic() - since) if since else 0.0
        return now, ended + now

    def paused_now_s(self) -> float:
        return self.pauses()[0]

    def paused_total_s(self) -> float:
        return self.pauses()[1]

    def fit_process_died(self) -> None:
        """A fit process killed mid-wait never ends its wait: end it for it, so the gauge does not grow forever."""
        since = float(self.shared.paused_since.value)
        if since:
            self.shared.paused_since.value = 0.0
            self.shared.paused_s.value += max(0.0, time.monotonic() - since)


def follow(shared: SharedRenderState | None, cancelled: Any = None) -> None:
    """Make this process wait on `shared` (a RenderCount's) and report its waits there (None: never wait), and stop
    the jobs that `cancelled` (a CancelledJobs' ids) names."""
    global _shared, _cancelled
    _shared = shared
    _cancelled = cancelled


@contextlib.contextmanager
def running_job(job_id: int) -> Iterator[None]:
    """The checks within this block stop with FitCancelled once the server cancels `job_id`."""
    global _job
    _job = job_id
    try:
        yield
    finally:
        _job = 0


def is_cancelled(job_id: int) -> bool:
    cancelled = _cancelled
    return cancelled is not None and job_id != 0 and job_id in cancelled[:]


def _stop_if_cancelled() -> None:
    if is_cancelled(_job):
        raise FitCancelled(f"job {_job} was cancelled")


def on_long_wait(callback: Callable[[], None] | None) -> None:
    """Call `callback` once in each wait that lasts LONG_WAIT_S (None: tell no one)."""
    global _on_long_wait
    _on_long_wait = callback


def wait_while_rendering() -> float:
    """Sleep while the server renders speech; the seconds waited (0.0 at once when it is not, or in a process
    that follows no server). Raises FitCancelled, also mid-wait, once the server has cancelled the job."""
    _stop_if_cancelled()
    shared = _shared
    if shared is None or shared.count.value <= 0:
        return 0.0
    started = time.monotonic()
    shared.paused_since.value = started
    told = False
    try:
        while shared.count.value > 0:
            time.sleep(POLL_S)
            _stop_if_cancelled()
            if not told and _on_long_wait is not None and time.monotonic() - started >= LONG_WAIT_S:
                told = True
                _on_long_wait()
    finally:
        waited = time.monotonic() - started
        # In this order, a reader between the two writes sees too little, never too much (FitPauses keeps the
        # total from going down).
        shared.paused_since.value = 0.0
        shared.paused_s.value += waited
    return waited


def _wait_and_keep(tensor: Any) -> Any:
    wait_while_rendering()
    return tensor


@contextlib.contextmanager
def checks_between_operations() -> Iterator[None]:
    """Within this block, every tensor operation that keeps a tensor for the backward pass waits first (as it
    keeps it), and so does every step of the backward pass that uses one: a check every few milliseconds of a
    gradient fit, at the cost of a Python call each."""
    import torch

    with torch.autograd.graph.saved_tensors_hooks(_wait_and_keep, _wait_and_keep):
        yield
