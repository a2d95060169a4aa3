"""The fit process waits while the server renders speech, so a fit does not share the cores with a room's synthesis.

Niceness alone hands a fit only the CPU that synthesis leaves free, yet a fit running beside the engine still
slowed a busy room (bench/fit_beside_load.py: the two share caches and memory). So the server counts the clauses
it is rendering in one integer in shared memory (`RenderCount`), and the fit process checks it often
(`wait_while_rendering`): between the fit's tensor operations, forward and backward (autograd's saved-tensor
hooks, `checks_between_operations`), and before each call of the engine, DNSMOS or the judge. While the count is
above zero the fit sleeps. Its budget is CPU time, so waiting costs it time on the clock, never steps.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# How often a waiting fit looks again: short beside a clause's render (tenths of a second), long beside the read.
POLL_S = 0.005
# A wait this long is told (`on_long_wait`): the owner's progress says why the fit stands still.
LONG_WAIT_S = 2.0

_shared_count: Any = None  # this process's view of the server's count (a fit process with a server), else None
_on_long_wait: Callable[[], None] | None = None


class RenderCount:
    """Clauses the server is rendering now, in shared memory that the fit process reads without a lock.

    Made from the multiprocessing context that starts the fit process, and handed to it when it starts."""

    def __init__(self, context: Any) -> None:
        self.shared = context.RawValue("i", 0)
        # The scheduler counts from its event loop; the lock keeps the count right for any caller on another thread.
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def rendering(self) -> Iterator[None]:
        with self._lock:
            self.shared.value += 1
        try:
            yield
        finally:
            with self._lock:
                self.shared.value -= 1

    @property
    def value(self) -> int:
        return int(self.shared.value)


def follow(shared_count: Any) -> None:
    """Make this process wait on `shared_count` (a RenderCount's `shared`); None: never wait."""
    global _shared_count
    _shared_count = shared_count


def on_long_wait(callback: Callable[[], None] | None) -> None:
    """Call `callback` once in each wait that lasts LONG_WAIT_S (None: tell no one)."""
    global _on_long_wait
    _on_long_wait = callback


def wait_while_rendering() -> float:
    """Sleep while the server renders speech; the seconds waited (0.0 at once when it is not, or in a process
    that follows no server)."""
    count = _shared_count
    if count is None or count.value <= 0:
        return 0.0
    started = time.monotonic()
    told = False
    while count.value > 0:
        time.sleep(POLL_S)
        if not told and _on_long_wait is not None and time.monotonic() - started >= LONG_WAIT_S:
            told = True
            _on_long_wait()
    return time.monotonic() - started


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
