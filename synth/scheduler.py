"""Between the gateway and the engine: admission, deadline order, cancellation, off-loop compute.

Clauses wait in one heap ordered by deadline (earliest first). A first clause is due
`first_clause_target_s` after it arrives; a continuation is due shortly before the
audio already sent for its utterance runs out. So new utterances get ahead of
continuations that still have audio in hand, and no stream runs dry.

Admission is per utterance: at most `max_active` utterances are in flight; one more
is refused with `overloaded` before anything is charged. Before compute, each clause
asks its utterance whether it is still wanted (room not empty, sender connected,
consent still on); if not, it is dropped uncomputed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np

from synth.engines.base import ClauseRequest, Engine
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.metrics import Metrics

log = logging.getLogger(__name__)

WantedCheck = Callable[[], Awaitable[bool]]


class ClauseDropped(Exception):
    """The clause's utterance was no longer wanted when its turn came."""


@dataclasses.dataclass(order=True)
class _Queued:
    deadline: float
    seq: int
    clause: ClauseRequest = dataclasses.field(compare=False)
    wanted: WantedCheck = dataclasses.field(compare=False)
    future: asyncio.Future[np.ndarray] = dataclasses.field(compare=False)
    enqueued_at: float = dataclasses.field(compare=False)


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        *,
        workers: int = 1,
        max_active: int = 64,
        first_clause_target_s: float = 0.25,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.workers = workers
        self.max_active = max_active
        self.first_clause_target_s = first_clause_target_s
        self._heap: list[_Queued] = []
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")
        self._active = 0

    # ---- admission -----------------------------------------------------------------

    def admit(self) -> None:
        """Reserve a slot for one utterance, or refuse with overloaded."""
        if self._active >= self.max_active:
            raise VoxroomError(ErrorCode.OVERLOADED)
        self._active += 1

    def release(self) -> None:
        self._active = max(0, self._active - 1)

    @property
    def active(self) -> int:
        return self._active

    # ---- work ----------------------------------------------------------------------

    def submit(self, clause: ClauseRequest, *, deadline: float, wanted: WantedCheck) -> asyncio.Future[np.ndarray]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        heapq.heappush(self._heap, _Queued(deadline, next(self._seq), clause, wanted, future, loop.time()))
        self.metrics.queue_depth.set(len(self._heap))
        self._ready.set()
        return future

    def first_clause_deadline(self, now: float) -> float:
        return now + self.first_clause_target_s

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(i), name=f"synth-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for item in self._heap:
            if not item.future.done():
                item.future.set_exception(ClauseDropped("server stopping"))
        self._heap.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _next(self) -> _Queued:
        while not self._heap:
            self._ready.clear()
            await self._ready.wait()
        item = heapq.heappop(self._heap)
        self.metrics.queue_depth.set(len(self._heap))
        return item

    async def _worker(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self._next()
            if item.future.done():  # the waiter gave up (cancelled)
                continue
            try:
                if not await item.wanted():
                    self.metrics.dropped.labels(reason="unwanted").inc()
                    item.future.set_exception(ClauseDropped("no longer wanted"))
                    continue
                self.metrics.queue_wait.observe(loop.time() - item.enqueued_at)
                started = time.perf_counter()
                (audio,) = await loop.run_in_executor(self._pool, self.engine.synthesize_batch, [item.clause])
                elapsed = time.perf_counter() - started
                seconds = audio.size / self.engine.sample_rate
                self.metrics.batch_size.observe(1)
                if seconds > 0:
                    self.metrics.engine_rtf.labels(engine=self.engine.name).observe(elapsed / seconds)
                    self.metrics.audio_seconds.labels(engine=self.engine.name).inc(seconds)
                if not item.future.done():
                    item.future.set_result(audio)
            except asyncio.CancelledError:
                if not item.future.done():
                    item.future.set_exception(ClauseDropped("server stopping"))
                raise
            except Exception as exc:  # an engine failure fails this clause, not the worker
                log.exception("engine %s failed on a clause", self.engine.name)
                if not item.future.done():
                    item.future.set_exception(exc)
