"""Background processes for enrollment: CPU-heavy work never runs in the serving process.

Two single-process pools, each niced and single-threaded so synthesis for everyone else
takes the CPU first: one analyses uploads (quick, the uploader waits for it), one fits voices
(minutes, one at a time; before each fit it loads what that fit needs and the process has
not loaded yet, outside the voice's budget). With `yield_to_synthesis`, the fit process also
waits while the server renders speech (synth.yielding). A fit whose caller stops waiting for it
(its voice deleted or enrolled again) stops at the fit process's next check. Progress comes back
over a queue and is handed to the caller's callback on its event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from synth import yielding

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]

# The stage a fit's progress shows while it has waited a while for the server's renders (synth.yielding).
WAITING_STAGE = "paused while the server speaks for the rooms"

_progress_queue: Any = None  # set in each worker process by _init_worker
_STOP = None


def _exit_with_parent(parent: int) -> None:
    """Die when the server dies: a worker outliving it would hold gigabytes of models forever.

    `parent` is the server's pid as the server saw it, so a server that died while this
    worker was still starting is noticed too."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(
    progress_queue: Any, niceness: int, parent: int, render_state: Any = None, cancelled: Any = None
) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    _exit_with_parent(parent)
    yielding.follow(render_state, cancelled)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    if niceness:
        os.nice(niceness)
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def _warm_up_fit(language_hint: str, progress: ProgressCallback) -> None:
    """Load what a fit of `language_hint` needs and this process has not loaded yet (the models with the first fit,
    a language's front end with the first fit that speaks it), before the fit's budget clock starts
    (synth.fit.warm_up), saying so in the fit's progress only when there is something to load. A failure here is
    logged and left to the fit, which reports it as a fit error."""
    try:
        from synth.fit.warm_up import fit_languages, still_to_load, warm_up
    except ImportError:  # the fit is not installed: jobs keep the start pack
        return
    try:
        languages = fit_languages(language_hint)
        if still_to_load(languages):
            progress(0.0, "loading the voice fit")
            warm_up(languages)
    except yielding.FitCancelled:
        raise
    except Exception:
        log.exception("the fit process could not load its models; the fit will try again")


class _Report:
    """A job's progress, sent to the server; it keeps the last fraction, so that a stage without one can be told."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.fraction = 0.0

    def __call__(self, fraction: float, stage: str) -> None:
        self.fraction = float(fraction)
        _progress_queue.put((self.job_id, self.fraction, stage))

    def waiting_for_synthesis(self) -> None:
        self(self.fraction, WAITING_STAGE)


def _run_analysis(job_id: int, data: bytes, limits: Any, language_hint: str) -> Any:
    from synth.enroll.tasks import analyse_recording

    return analyse_recording(data, limits, language_hint, progress=_Report(job_id))


def _run_fit(
    job_id: int,
    target_arrays: dict[str, Any],
    language_hint: str,
    start_pack: Any,
    judge_print: Any,
    cpu_budget_s: float,
    per_layer_timbre: bool,
) -> Any:
    from synth.enroll.tasks import fit_voice

    progress = _Report(job_id)
    yielding.on_long_wait(progress.waiting_for_synthesis)
    try:
        with yielding.running_job(job_id):
            yielding.wait_while_rendering()
            _warm_up_fit(language_hint, progress)  # outside the voice's budget: fit_voice starts its clock
            with yielding.checks_between_operations():
                return fit_voice(
                    target_arrays, language_hint, start_pack, judge_print, cpu_budget_s, progress=progress,
                    per_layer_timbre=per_layer_timbre,
                )
    except Exception as exc:
        # Raised in a check; autograd may hand it on wrapped, when a check in the backward pass raised it.
        if isinstance(exc, yielding.FitCancelled) or yielding.is_cancelled(job_id):
            log.info("a voice fit was cancelled by the server; stopped")
            return None  # nobody waits for it
        raise
    finally:
        yielding.on_long_wait(None)


class EnrollmentWorkers:
    """The analysis process and the fit process, started on first use.

    `yield_to_synthesis`: the fit process waits while `render_count` (which the server's scheduler keeps) says
    that speech is being rendered. The analysis does not: its uploader is waiting for it."""

    def __init__(self, *, niceness: int = 10, yield_to_synthesis: bool = False) -> None:
        self._niceness = niceness
        self._context = multiprocessing.get_context("spawn")
        self.render_count = yielding.RenderCount(self._context) if yield_to_synthesis else None
        # A fit whose caller stops waiting (its voice deleted or enrolled again) is stopped in the fit process.
        self.fit_cancels = yielding.CancelledJobs(self._context)
        self._progress: Any = self._context.Queue()
        self._pools: dict[str, concurrent.futures.ProcessPoolExecutor] = {}
        self._callbacks: dict[int, tuple[asyncio.AbstractEventLoop, ProgressCallback]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    async def analyse(
        self, data: bytes, limits: Any, language_hint: str, progress: ProgressCallback | None = None
    ) -> Any:
        return await self._submit("analysis", _run_analysis, progress, data, limits, language_hint)

    async def fit(
        self,
        target_arrays: dict[str, Any],
        language_hint: str,
        start_pack: Any,
        judge_print: Any,
        cpu_budget_s: float,
        progress: ProgressCallback | None = None,
        per_layer_timbre: bool = True,
    ) -> Any:
        return await self._submit(
            "fit", _run_fit, progress, target_arrays, language_hint, start_pack, judge_print, cpu_budget_s,
            per_layer_timbre,
        )

    async def _submit(
        self, pool_name: str, fn: Callable[..., Any], progress: ProgressCallback | None, *args: Any
    ) -> Any:
        job_id = next(self._ids)
        loop = asyncio.get_running_loop()
        if progress is not None:
            self._callbacks[job_id] = (loop, progress)
        future: concurrent.futures.Future[Any] | None = None
        try:
            future = self._pool(pool_name).submit(fn, job_id, *args)  # raises BrokenProcessPool too, below
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # A job the pool still holds is dropped there; one it has handed to the process stops at the process's
            # next check. Only those take a slot of CancelledJobs' few, so none overwrites a job still running.
            if pool_name == "fit" and future is not None and not future.cancel() and not future.done():
                self.fit_cancels.cancel(job_id)
            raise
        except concurrent.futures.process.BrokenProcessPool:
            # The process died (killed, out of memory): start a fresh one for the next job.
            self._pools.pop(pool_name, None)
            if pool_name == "fit" and self.render_count is not None:
                self.render_count.fit_process_died()
            raise
        finally:
            self._callbacks.pop(job_id, None)

    def _pool(self, name: str) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=self._context,
                    initializer=_init_worker,
                    initargs=(self._progress, self._niceness, os.getpid(), *self._followed_state(name)),
                )
                self._pools[name] = pool
            if self._reader is None:
                self._reader = threading.Thread(target=self._read_progress, name="enroll-progress", daemon=True)
                self._reader.start()
            return pool

    def _followed_state(self, pool_name: str) -> tuple[Any, Any]:
        if pool_name != "fit":
            return None, None
        return (self.render_count.shared if self.render_count is not None else None), self.fit_cancels.ids

    def _read_progress(self) -> None:
        while True:
            try:
                item = self._progress.get()
            except (EOFError, OSError, queue.Empty):
                return
            if item is _STOP:
                return
            job_id, fraction, stage = item
            entry = self._callbacks.get(job_id)
            if entry is not None:
                loop, callback = entry
                try:
                    loop.call_soon_threadsafe(callback, fraction, stage)
                except RuntimeError:  # the loop has closed
                    pass

    def close(self) -> None:
        """Stop both processes now, a running fit included: its voice stays 'fitting' and resumes at the
        next start (EnrollmentService.resume_pending)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            # The executor has no public way to stop a running job; its process table is the only handle.
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(timeout=10)
        if self._reader is not None:
            self._progress.put(_STOP)
            self._reader.join(timeout=5)
            self._reader = None
