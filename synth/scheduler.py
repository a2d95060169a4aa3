"""Between the gateway and the engine: admission, deadline order, batching, cancellation, off-loop compute.

Clauses wait in one heap ordered by when they must start at the latest: the time they
are due less the time they will take to render (predicted by a cost model fitted to the
engine's recent calls, `synth.admission.RenderCostModel`). A first clause is due
`first_clause_target_s` after it arrives; a continuation is due shortly before the audio
predicted ahead of it runs out. Every clause of an utterance is queued when it starts, so
an idle worker renders continuations ahead of time and banks audio for busy moments.
New utterances get ahead of continuations that still have audio in hand, and a long
continuation starts early enough that its stream does not run dry.

Fairness: a sender's second, third... utterance in flight gets its first clause due
`fairness_step_s` later per utterance ahead of it, so one chatty sender cannot push
everyone else back.

Admission is per utterance, before anything is charged: `overloaded` when `max_active`
utterances are in flight, or when the queue replayed with the new utterance added predicts
a clause finishing late (a first audio waiting more than `max_first_audio_s` behind other work,
on top of its own render time, or a stream running dry): see `synth.admission`. Utterances
admitted but not yet queued are counted too. Before compute, each clause asks its utterance
whether it is still wanted (room not empty, sender connected, consent still on); if not, it
is dropped uncomputed.

Batching: an engine with `max_batch > 1` gets up to that many clauses per call, taken
from the same length bucket (so short clauses do not wait on long ones), gathering
for at most `max_wait_s` after the first one is taken. An engine that decodes step by
step (it offers `continuous()`, as GPT-SoVITS does) is driven row by row instead: clauses
join the running batch between steps and leave it when they end (continuous batching).
One scheduler serves one engine.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable

import numpy as np

from synth.admission import (
    AudioLengthModel,
    Blame,
    PlannedClause,
    Playback,
    QueueReplay,
    RenderCostModel,
    audio_ahead_s,
)
from synth.engines.base import ClauseRequest, Engine
from synth.text.segment import spoken_seconds
from synth.yielding import RenderCount
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.metrics import Metrics

log = logging.getLogger(__name__)

# The clause length the startup speed report is quoted for: a typical sentence clause (a short reply costs more per
# second, its per-call cost spread over less audio).
CALIBRATION_SPEECH_S = 2.0

WantedCheck = Callable[[], Awaitable[bool]]
LENGTH_BUCKETS = (12, 32, 64)  # clause characters: batch only within one bucket
# A continuation is due this long before the audio predicted ahead of it runs out.
CONTINUATION_MARGIN_S = 0.4
# Admission lets a clause be predicted this late, hidden by the listener's jitter buffer (the load
# benchmark plays 200 ms behind the first frame; WebRTC's adaptive buffer holds more under jitter).
LATENESS_TOLERANCE_S = 0.15
# Where admission and the first-audio hold predict whether a stream keeps playing, a continuation is counted at this
# many times its predicted render time: calls vary around the cost model (inside the server, encoding and marking
# share the cores), and a stream starting with no cushion gaps at the first long one. The order of work is not
# changed. Chosen with bench/queue_sim.py (load mix at 80% of capacity, 30 traffic seeds, calls varying around the
# measured costs with a log-normal sigma of 0 / 0.15 / 0.3): accepted messages with a gap 1.8 / 3.3 / 6.8% ->
# 0 / 0.9 / 1.9%, refused 14.5 / 14.9 / 16.1% -> 17.6 / 17.8 / 19.2%, p95 first audio 0.1-0.2 s sooner.
CONTINUATION_COST_CUSHION = 1.3


def length_bucket(text: str) -> int:
    for index, limit in enumerate(LENGTH_BUCKETS):
        if len(text) <= limit:
            return index
    return len(LENGTH_BUCKETS)


class ClauseDropped(Exception):
    """The clause's utterance was no longer wanted when its turn came."""


@dataclasses.dataclass(order=True)
class _Queued:
    start_by: float  # the latest time to start rendering and still be done by the deadline
    seq: int
    clause: ClauseRequest = dataclasses.field(compare=False)
    wanted: WantedCheck = dataclasses.field(compare=False)
    future: asyncio.Future[np.ndarray] = dataclasses.field(compare=False)
    enqueued_at: float = dataclasses.field(compare=False)
    bucket: int = dataclasses.field(compare=False, default=0)
    speech_s: float = dataclasses.field(compare=False, default=0.0)  # predicted seconds of speech
    playback: Playback | None = dataclasses.field(compare=False, default=None)
    first: bool = dataclasses.field(compare=False, default=True)
    audio_before_s: float = dataclasses.field(compare=False, default=0.0)  # predicted (see PlannedClause)
    # Where the clause's audio is handed over before the future resolves with the whole: piece by piece as the
    # engine renders them (`Engine.stream_clause`) when it is streamed, else whole. A first clause given one is
    # always streamed; a continuation only when, rendered whole, it would be late (`Scheduler._late_whole`).
    pieces: asyncio.Queue[np.ndarray] | None = dataclasses.field(compare=False, default=None)
    # Set when a worker takes a first clause that will be streamed: called when its first piece is out (or it is
    # not rendered after all), so other workers know they may render ahead of time again.
    first_piece_out: Callable[[], None] | None = dataclasses.field(compare=False, default=None)
    heard_before_s: float = dataclasses.field(compare=False, default=0.0)  # rendered, exact (see retime)


@dataclasses.dataclass(frozen=True)
class ClauseTiming:
    """What the scheduler needs to know of one clause of an utterance before it is rendered."""

    speech_s: float  # predicted seconds of speech
    audio_before_s: float  # predicted audio (speech and pauses) of the clauses before it


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        *,
        workers: int = 1,
        max_active: int = 64,
        first_clause_target_s: float = 0.25,
        fairness_step_s: float = 0.5,
        max_wait_s: float = 0.01,
        max_first_audio_s: float = 1.2,
        render_count: RenderCount | None = None,
    ) -> None:
        self.engine = engine
        # Clauses being rendered, for a fit process that waits while there are any (synth.yielding).
        self.render_count = render_count
        self.metrics = metrics
        self.workers = workers
        self.max_active = max_active
        self.first_clause_target_s = first_clause_target_s
        self.fairness_step_s = fairness_step_s
        self.max_wait_s = max_wait_s
        self.max_first_audio_s = max_first_audio_s
        self._heap: list[_Queued] = []
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")
        self._active = 0
        self._active_by_sender: collections.Counter[str] = collections.Counter()
        self.cost = RenderCostModel()  # a clause rendered whole: continuations, and every clause of a batching engine
        # A first clause streamed in two windows costs more than the same clause rendered whole: two decoder calls,
        # and the windows overlap. Fitted apart: one line for both under-predicted streamed first clauses by
        # 0.1-0.3 s on a 2-core machine without VNNI, and the streams behind them ran dry.
        self.streamed_cost = RenderCostModel()
        # Seconds from the start of a streamed first clause's render to its first piece, by predicted speech
        # seconds (Kokoro: about 0.2 s whatever the length; an engine that does not stream: the whole render).
        self.first_piece = RenderCostModel(call_s=0.25, per_audio_s=0.05)
        self.audio_length = AudioLengthModel()
        self._busy_until = [0.0] * workers  # predicted end of each worker's current call (loop time)
        # Utterances admitted whose clauses are not queued yet (the policy check and voice lookup come between):
        # admission counts them, or a burst of messages arriving together is admitted against the same empty queue.
        self._reserved: dict[int, list[PlannedClause]] = {}
        # First clauses being rendered whose first piece is not out yet. While there is one, other workers do not
        # render ahead of time: on shared cores that would slow the first piece someone is waiting to hear.
        self._first_pieces_pending = 0

    # ---- calibration ---------------------------------------------------------------

    async def calibrate(self, clauses: list[ClauseRequest]) -> None:
        """Before serving: render `clauses` (short to long) and fit the cost models to this machine's speed.

        Admission is only as good as its predictions; started from another machine's figures, the first calls
        on a slower one were predicted at 0.37 s and took 1.6 s, and everything admitted meanwhile ran late.
        """
        if self.continuous or not clauses:
            return
        loop = asyncio.get_running_loop()
        costs, first_pieces, lengths = [], [], []
        for clause in clauses:
            speech_s = spoken_seconds(clause.text, clause.lang)
            started = time.perf_counter()
            if self.streams_first:  # as a first clause is rendered: its first piece is timed too
                pieces: asyncio.Queue[np.ndarray] = asyncio.Queue()
                pcm, first_piece_s = await loop.run_in_executor(self._pool, self._stream, clause, pieces, loop)
                first_pieces.append((speech_s, first_piece_s))
            else:
                (pcm,) = await loop.run_in_executor(self._pool, self.engine.synthesize_batch, [clause])
            costs.append((speech_s, time.perf_counter() - started))
            lengths.append((speech_s, pcm.size / self.engine.sample_rate))
        # With streaming, calibration measured streamed calls: the whole-clause model starts from them too (an
        # overestimate: admission is a little strict until real continuations have been measured).
        self.cost.seed(costs)
        self.streamed_cost.seed(costs if self.streams_first else [])
        self.first_piece.seed(first_pieces)
        for speech_s, audio_s in lengths:
            self.audio_length.observe(speech_s, audio_s)
        log.info(
            "calibrated on %d clauses: %s; first piece %.2f s; %.2f s of audio per predicted second",
            len(clauses), self.cost, self.first_piece.predict(1.0), self.audio_length.ratio,
        )
        rtf = self.calibrated_real_time_factor()
        self.metrics.engine_calibrated_rtf.labels(engine=self.engine.name).set(rtf)
        if rtf >= 1.0:
            log.warning(
                "this machine renders %.2f s per second of audio (a 2 s clause): slower than real time, so clauses "
                "after the first, and long first clauses, will pause while they play; expect overloaded refusals "
                "at a fraction of the usual load (measured elsewhere: about 0.6 on 2 cores with AVX-512 VNNI)", rtf,
            )

    def calibrated_real_time_factor(self, speech_s: float = CALIBRATION_SPEECH_S) -> float:
        """Compute seconds per audio second of a clause of `speech_s` predicted seconds, as the models stand."""
        return self.cost.predict(speech_s) / max(1e-9, speech_s * self.audio_length.ratio)

    # ---- admission -----------------------------------------------------------------

    def admit(self, sender: str, timings: list[ClauseTiming] | None = None) -> Playback:
        """Reserve a slot for one utterance of `sender`, or refuse with overloaded.

        `timings` (None for audio that needs no rendering, e.g. from the phrase cache) lets
        admission check that the engine can render it, and everything already queued, on time.
        """
        if self._active >= self.max_active:
            self.metrics.refused.labels(reason="max_active").inc()
            raise VoxroomError(ErrorCode.OVERLOADED)
        loop = asyncio.get_running_loop()
        now = loop.time()
        first_deadline = self.first_clause_deadline(now, sender, extra=1)
        # A sender's own earlier messages push its first clause back by the fairness step; that wait is chosen.
        own_wait = first_deadline - now - self.first_clause_target_s
        # max_first_audio_s bounds the wait behind other work, on top of the first audio's own render time: a
        # slower machine (a first piece of ~1 s without VNNI, ~0.2 s with) is not overloaded when idle, and a
        # second message right after a first one is queued, not refused.
        own_render = self._first_audio_alone_s(timings[0].speech_s) if timings else 0.0
        playback = Playback(due=now + self.max_first_audio_s + own_wait + own_render)
        # Off when max_first_audio_s is 0; a step-by-step engine's cost is shared by its batch: not modelled.
        planned: list[PlannedClause] = []
        if timings and self.max_first_audio_s > 0 and not self.continuous:
            planned = self._planned(playback, timings, first_deadline)
            queued = self._queued_plan()
            blame = self._replay(now).worst_added(queued, planned)
            if blame.lateness_s > 0 and not blame.newcomer:
                planned, blame = self._behind(now, playback, timings, first_deadline, queued, planned, blame)
            lateness = blame.lateness_s
            self.metrics.predicted_slack.observe(-lateness)
            if lateness > 0:
                log.info(
                    "overloaded: %s would be +%.2f s late with %d clauses queued (cost %s, streamed first clauses %s; "
                    "%.2f s audio per speech s)",
                    blame, lateness, len(self._heap), self.cost, self.streamed_cost, self.audio_length.ratio,
                )
                self.metrics.refused.labels(reason="compute").inc()
                drained_in = self._replay(now).drained_at(queued) - now
                raise VoxroomError(
                    ErrorCode.OVERLOADED,
                    f"The voice engine is busy: this message would start {lateness:.1f} s late. Try again shortly.",
                    retry_after_s=max(0.5, math.ceil(drained_in * 2) / 2),  # what is queued now is done by then
                )
        self._active += 1
        self._active_by_sender[sender] += 1
        if planned:
            self._reserved[id(playback)] = planned
        return playback

    def _behind(
        self,
        now: float,
        playback: Playback,
        timings: list[ClauseTiming],
        first_deadline: float,
        queued: list[PlannedClause],
        planned: list[PlannedClause],
        blame: Blame,
    ) -> tuple[list[PlannedClause], Blame]:
        """Going first, a newcomer would make queued work late. Queued behind it instead (its first clause due as
        late as its own first-audio deadline allows), is nothing late? Then it waits its turn rather than being
        refused: `playback.first_deadline` says so to the speaker. Returns the plan and blame to go on with."""
        speech_s = timings[0].speech_s
        deferred = (
            playback.due
            - self._first_audio_alone_s(speech_s)
            + self._predict(speech_s, streamed=self.streams_first)
            - LATENESS_TOLERANCE_S
        )
        if deferred <= first_deadline:
            return planned, blame
        behind = self._planned(playback, timings, deferred)
        behind_blame = self._replay(now).worst_added(queued, behind)
        if behind_blame.lateness_s <= 0:
            self.metrics.admitted_behind.inc()
            playback.first_deadline = deferred
            return behind, behind_blame
        return (planned, blame) if blame.lateness_s <= behind_blame.lateness_s else (planned, behind_blame)

    def _first_audio_alone_s(self, speech_s: float) -> float:
        """Predicted seconds from the start of a first clause's render to its first audio, on an idle worker."""
        return self.first_piece.predict(speech_s) if self.streams_first else self.cost.predict(speech_s)

    def _predict(self, speech_s: float, *, streamed: bool) -> float:
        """Predicted render seconds of a clause: `streamed`, a first clause heard piece by piece."""
        return (self.streamed_cost if streamed else self.cost).predict(speech_s)

    def _replayed_cost(self, speech_s: float, *, streamed: bool, first: bool) -> float:
        """Render seconds as admission and the hold count them: a continuation with its cushion."""
        return self._predict(speech_s, streamed=streamed) * (1.0 if first else CONTINUATION_COST_CUSHION)

    def _order(self, deadline: float, speech_s: float, *, streamed: bool) -> float:
        return deadline - self._predict(speech_s, streamed=streamed)

    def continuation_deadline(self, playback_at: float, audio_before_s: float) -> float:
        return playback_at + audio_before_s - CONTINUATION_MARGIN_S

    def _planned(self, playback: Playback, timings: list[ClauseTiming], first_deadline: float) -> list[PlannedClause]:
        """An utterance's clauses as admission sees them, before they are queued."""
        new = []
        for index, timing in enumerate(timings):
            deadline = (
                self.continuation_deadline(first_deadline, timing.audio_before_s) if index else first_deadline
            )
            streamed = index == 0 and self.streams_first
            new.append(
                PlannedClause(
                    self._order(deadline, timing.speech_s, streamed=streamed),
                    self._replayed_cost(timing.speech_s, streamed=streamed, first=index == 0),
                    playback,
                    index == 0,
                    timing.audio_before_s,
                    self.first_piece.predict(timing.speech_s) if index == 0 and self.streams_first else None,
                )
            )
        return new

    def _queued_plan(self) -> list[PlannedClause]:
        return [
            PlannedClause(
                item.start_by, self._replayed_cost(item.speech_s, streamed=self._streamed(item), first=item.first),
                item.playback, item.first,
                item.audio_before_s,
                self.first_piece.predict(item.speech_s) if self._streamed(item) else None,
                item.heard_before_s,
            )
            for item in self._heap
            if item.playback is not None and not item.future.done()
        ] + [clause for reserved in self._reserved.values() for clause in reserved]

    def _replay(self, now: float) -> QueueReplay:
        return QueueReplay(
            now=now,
            workers=self.workers,
            workers_free_at=tuple(self._busy_until),
            audio_per_speech=self.audio_length.ratio,
            tolerance_s=LATENESS_TOLERANCE_S,
        )

    def hold(self, playback: Playback) -> float:
        """Seconds to hold an utterance's first audio so that its continuations, as queued now, arrive before the
        audio ahead of them runs out; never past its first-audio deadline. A burst of new messages then costs
        time to first audio instead of gaps inside the streams already playing."""
        if self.max_first_audio_s <= 0 or self.continuous:
            return 0.0
        now = asyncio.get_running_loop().time()
        start = self._replay(now).start_time(playback, self._queued_plan())
        if start > max(now, playback.due):  # a hold was wanted, and the deadline cuts it short
            self.metrics.hold_capped.inc()
            log.debug(
                "hold capped by the first-audio deadline: continuations need %.2f s, the deadline allows %.2f s "
                "(%d clauses queued)", start - now, playback.due - now, len(self._heap),
            )
        return max(0.0, min(start, playback.due) - now)

    def release(self, sender: str, playback: Playback | None = None) -> None:
        """An utterance is over (or was refused after admission): its slot and any reservation are freed."""
        if playback is not None:
            self._reserved.pop(id(playback), None)
        self._active = max(0, self._active - 1)
        self._active_by_sender[sender] -= 1
        if self._active_by_sender[sender] <= 0:
            del self._active_by_sender[sender]

    @property
    def active(self) -> int:
        return self._active

    @property
    def queued(self) -> int:
        """Clauses waiting for a worker."""
        return len(self._heap)

    def first_clause_deadline(self, now: float, sender: str, *, extra: int = 0) -> float:
        ahead = max(0, self._active_by_sender.get(sender, 0) - 1 + extra)
        return now + self.first_clause_target_s + self.fairness_step_s * ahead

    # ---- work ----------------------------------------------------------------------

    def submit(
        self,
        clause: ClauseRequest,
        *,
        deadline: float,
        wanted: WantedCheck,
        playback: Playback | None = None,
        audio_before_s: float = 0.0,
        speech_s: float | None = None,
        pieces: asyncio.Queue[np.ndarray] | None = None,
    ) -> asyncio.Future[np.ndarray]:
        """Queue a clause that should be rendered by `deadline` (loop time).

        With `playback`, the clause counts in admission's prediction: a first clause when
        `audio_before_s` is 0, else a continuation due when that much audio has played. `speech_s` is
        the clause's predicted seconds of speech, if the caller already has it. With `pieces`, the clause's audio
        is put there as it is rendered: a first clause is rendered with the engine's `stream_clause`, each piece
        put there as soon as it is out; a continuation likewise when it would be late rendered whole, else whole.
        The future still resolves with the whole clause, after the last piece.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        speech_s = spoken_seconds(clause.text, clause.lang) if speech_s is None else speech_s
        streamed = pieces is not None and self.streams_first and audio_before_s <= 0
        item = _Queued(
            self._order(deadline, speech_s, streamed=streamed), next(self._seq), clause, wanted, future, loop.time(),
            length_bucket(clause.text), speech_s, playback, audio_before_s <= 0, audio_before_s, pieces,
        )
        if playback is not None:  # its clauses are queued now (all at once): they stand for the reservation
            self._reserved.pop(id(playback), None)
        heapq.heappush(self._heap, item)
        self.metrics.queue_depth.set(len(self._heap))
        self._ready.set()
        return future

    def retime(
        self, started_at: float, heard_s: float, predicted_before: dict[asyncio.Future[np.ndarray], float]
    ) -> None:
        """An utterance started playing at `started_at` with `heard_s` seconds of audio rendered: each of its
        queued continuations (by future) is now due when that and the audio predicted between,
        `predicted_before[future]` (in predicted seconds, as `ClauseTiming.audio_before_s`), have played.

        The two are kept apart: admission scales predicted audio by the audio per speech second it has learned
        (about 1.2), and scaling the audio already rendered too gave a playing stream 0.2 s of imagined slack per
        second heard, slack that newcomers were then admitted into."""
        changed = False
        for item in self._heap:
            predicted = predicted_before.get(item.future)
            if predicted is not None:
                due = self.continuation_deadline(started_at, heard_s + predicted)
                item.start_by = self._order(due, item.speech_s, streamed=self._streamed(item))
                item.heard_before_s, item.audio_before_s = heard_s, predicted
                changed = True
        if changed:
            heapq.heapify(self._heap)

    def _streamed(self, item: _Queued) -> bool:
        """Whether a queued clause will be rendered as a streamed first clause (costed by `streamed_cost`)."""
        return item.first and item.pieces is not None and self.streams_first

    def _late_whole(self, item: _Queued, now: float) -> bool:
        """Would this continuation (not a first clause), rendered whole, be ready only after the audio ahead of it
        has run out?

        Then it is streamed instead: heard from its first piece (about a third of its render), at the price of a
        second decoder call (about 0.09 s). A continuation starts late when the call before it ran long; queued by
        its whole cost, it rarely does, so the extra cost is paid only where a gap was coming (bench/queue_sim.py:
        about 8% of continuations at 80% of capacity, accepted messages with a gap 2.0% -> 0.5%)."""
        playback = item.playback
        if playback is None or playback.started is None or not self.streams_first_clause:
            return False
        runs_out = playback.started + audio_ahead_s(item.heard_before_s, item.audio_before_s, self.audio_length.ratio)
        return now + self._replayed_cost(item.speech_s, streamed=False, first=False) > runs_out

    @property
    def streams_first(self) -> bool:
        """A first clause submitted with `pieces` is rendered alone with `stream_clause` (not batched, not
        stepped), so its first piece can be predicted apart from the whole."""
        return self.engine.max_batch == 1 and not self.continuous

    @property
    def streams_first_clause(self) -> bool:
        """The engine will stream a first clause's first words before the rest: it may be a longer one."""
        return self.streams_first and self.engine.streams_within_clause

    @property
    def continuous(self) -> bool:
        return callable(getattr(self.engine, "continuous", None))

    async def start(self) -> None:
        if self.continuous:
            self._tasks = [asyncio.create_task(self._continuous_worker(), name="synth-continuous")]
            return
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

    async def _wait_for_work(self, timeout: float | None = None) -> None:
        self._ready.clear()
        if timeout is None:
            await self._ready.wait()
            return
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            pass

    def _take_compatible(self, bucket: int, room: int) -> list[_Queued]:
        """Remove up to `room` queued clauses of this length bucket, earliest deadline first."""
        taken = [item for item in sorted(self._heap) if item.bucket == bucket and not item.future.done()][:room]
        if taken:
            chosen = {id(item) for item in taken}
            self._heap = [item for item in self._heap if id(item) not in chosen]
            heapq.heapify(self._heap)
        return taken

    async def _next_batch(self) -> list[_Queued]:
        loop = asyncio.get_running_loop()
        while True:
            while not self._heap:
                await self._wait_for_work()
            slack = self._heap[0].start_by - loop.time()
            if not self._first_pieces_pending or slack <= 0:
                break
            # Another worker is rendering a first piece, and the earliest work here can still wait: rendering it
            # now would put that first piece on one thread (synth.engines.kokoro: narrow_when_shared).
            await self._wait_for_work(slack)
        first = heapq.heappop(self._heap)
        if first.first and first.pieces is not None:  # counted at once, before this worker next awaits
            first.first_piece_out = self._first_piece_watch()
        batch = [first]
        if self.engine.max_batch > 1:
            gather_until = loop.time() + self.max_wait_s
            while len(batch) < self.engine.max_batch:
                batch += self._take_compatible(first.bucket, self.engine.max_batch - len(batch))
                remaining = gather_until - loop.time()
                if len(batch) >= self.engine.max_batch or remaining <= 0:
                    break
                await self._wait_for_work(remaining)
        self.metrics.queue_depth.set(len(self._heap))
        return batch

    async def _still_wanted(self, batch: list[_Queued]) -> list[_Queued]:
        keep = []
        for item in batch:
            if item.future.done():  # the waiter gave up
                continue
            if await item.wanted():
                keep.append(item)
            else:
                self.metrics.dropped.labels(reason="unwanted").inc()
                item.future.set_exception(ClauseDropped("no longer wanted"))
        return keep

    async def _worker(self, index: int) -> None:
        while True:
            batch = await self._next_batch()
            try:
                await self._render(index, batch)
            finally:
                for item in batch:  # rendered, dropped or failed: its first piece is no longer pending
                    if item.first_piece_out is not None:
                        item.first_piece_out()

    async def _render(self, index: int, batch: list[_Queued]) -> None:
        """Render one batch on worker `index` and resolve its clauses' futures."""
        loop = asyncio.get_running_loop()
        try:
            batch = await self._still_wanted(batch)
            if not batch:
                return
            now = loop.time()
            for item in batch:
                self.metrics.queue_wait.observe(now - item.enqueued_at)
            clauses = [item.clause for item in batch]
            speech_s = sum(item.speech_s for item in batch)
            started = time.perf_counter()
            only = batch[0]
            streamed = len(batch) == 1 and only.pieces is not None and (only.first or self._late_whole(only, now))
            if streamed and not only.first:
                self.metrics.continuations_streamed.inc()
            predicted = self._predict(speech_s, streamed=streamed)
            first_predicted = first_piece_s = 0.0  # set for a streamed clause
            self._busy_until[index] = now + predicted
            try:
                with self._counted_as_rendering():
                    if streamed:
                        assert only.pieces is not None
                        first_predicted = self.first_piece.predict(only.speech_s)
                        pcm, first_piece_s = await loop.run_in_executor(
                            self._pool, self._stream, only.clause, only.pieces, loop, only.first_piece_out
                        )
                        audio = [pcm]
                        self.first_piece.observe(only.speech_s, first_piece_s)
                    else:
                        audio = await loop.run_in_executor(self._pool, self.engine.synthesize_batch, clauses)
                        for item, pcm in zip(batch, audio, strict=True):
                            if item.pieces is not None:  # rendered whole (or batched with others): heard whole
                                item.pieces.put_nowait(pcm)
            finally:
                self._busy_until[index] = 0.0
            elapsed = time.perf_counter() - started
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "rendered %d clause(s) %r: %.2f s (predicted %.2f s; first piece %.2f s, predicted %.2f s), "
                    "%.2f s of audio, %.2f s of slack when it started (negative: late), %d queued",
                    len(batch), batch[0].clause.text[:24], elapsed, predicted, first_piece_s, first_predicted,
                    sum(a.size for a in audio) / self.engine.sample_rate, batch[0].start_by - now, len(self._heap),
                )
            # Admission is only as good as this: a steady error one way means refusals or gaps it did not foresee.
            self.metrics.render_misprediction.labels(kind="streamed" if streamed else "whole").observe(
                elapsed - predicted
            )
            self._account(audio, elapsed, speech_s, streamed=streamed)
            for item, pcm in zip(batch, audio, strict=True):
                if not item.future.done():
                    item.future.set_result(pcm)
        except asyncio.CancelledError:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(ClauseDropped("server stopping"))
            raise
        except Exception as exc:  # an engine failure fails these clauses, not the worker
            log.exception("engine %s failed on a batch of %d", self.engine.name, len(batch))
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)

    def _counted_as_rendering(self) -> contextlib.AbstractContextManager[None]:
        return self.render_count.rendering() if self.render_count is not None else contextlib.nullcontext()

    def _first_piece_watch(self) -> Callable[[], None]:
        """Counts a first piece as pending until the returned callback is called (once counts)."""
        pending = True
        self._first_pieces_pending += 1

        def out() -> None:
            nonlocal pending
            if pending:
                pending = False
                self._first_pieces_pending -= 1
                self._ready.set()  # workers holding back work ahead of time may take it now

        return out

    def _stream(
        self,
        clause: ClauseRequest,
        pieces: asyncio.Queue[np.ndarray],
        loop: asyncio.AbstractEventLoop,
        first_piece_out: Callable[[], None] | None = None,
    ) -> tuple[np.ndarray, float]:
        """On a worker thread: render one clause piece by piece, handing each piece to the loop as it comes.
        The loop runs these hand-overs before it sees this call return, so every piece is queued before the
        clause's future resolves. Returns the whole clause and the seconds its first piece took."""
        started = time.perf_counter()
        first_piece_s = None
        rendered = []
        for piece in self.engine.stream_clause(clause):
            rendered.append(piece)
            loop.call_soon_threadsafe(pieces.put_nowait, piece)
            if first_piece_s is None:
                first_piece_s = time.perf_counter() - started
                if first_piece_out is not None:  # after the piece is queued: the loop runs these in order
                    loop.call_soon_threadsafe(first_piece_out)
        elapsed = time.perf_counter() - started
        whole = np.concatenate(rendered) if rendered else np.zeros(0, np.float32)
        return whole, elapsed if first_piece_s is None else first_piece_s

    async def _continuous_worker(self) -> None:
        loop = asyncio.get_running_loop()
        synth = self.engine.continuous()  # type: ignore[attr-defined]
        rows: dict[int, tuple[_Queued, list[np.ndarray]]] = {}
        while True:
            try:
                await self._admit_rows(synth, rows)
                if not rows:
                    await self._wait_for_work()
                    continue
                self.metrics.batch_size.observe(len(rows))
                started = time.perf_counter()
                events = await loop.run_in_executor(self._pool, synth.step)
                produced = 0.0
                for event in events:
                    entry = rows.get(event.row)
                    if entry is None:
                        continue
                    item, chunks = entry
                    if len(event.audio):
                        chunks.append(event.audio)
                        produced += len(event.audio) / self.engine.sample_rate
                        if item.pieces is not None:
                            item.pieces.put_nowait(np.clip(event.audio, -1.0, 1.0))
                    if event.finished:
                        del rows[event.row]
                        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
                        if not item.future.done():
                            item.future.set_result(np.clip(audio, -1.0, 1.0))
                stepped = time.perf_counter() - started
                self.metrics.engine_busy.labels(engine=self.engine.name).inc(stepped)
                if produced > 0:
                    self.metrics.engine_rtf.labels(engine=self.engine.name).observe(stepped / produced)
                    self.metrics.audio_seconds.labels(engine=self.engine.name).inc(produced)
                for row, (item, _) in list(rows.items()):  # the waiter gave up: free its row
                    if item.future.done():
                        synth.cancel(row)
                        del rows[row]
            except asyncio.CancelledError:
                for item, _ in rows.values():
                    if not item.future.done():
                        item.future.set_exception(ClauseDropped("server stopping"))
                raise
            except Exception as exc:  # a failed step fails its rows; a fresh synthesizer serves on
                log.exception("engine %s failed a continuous step with %d rows", self.engine.name, len(rows))
                for item, _ in rows.values():
                    if not item.future.done():
                        item.future.set_exception(exc)
                rows.clear()
                synth = self.engine.continuous()  # type: ignore[attr-defined]

    async def _admit_rows(self, synth: object, rows: dict[int, tuple[_Queued, list[np.ndarray]]]) -> None:
        """Between steps: fill free rows with the earliest-due clauses still wanted."""
        loop = asyncio.get_running_loop()
        while len(rows) < self.engine.max_batch and self._heap:
            item = heapq.heappop(self._heap)
            self.metrics.queue_depth.set(len(self._heap))
            if item.future.done():
                continue
            if not await item.wanted():
                self.metrics.dropped.labels(reason="unwanted").inc()
                item.future.set_exception(ClauseDropped("no longer wanted"))
                continue
            self.metrics.queue_wait.observe(loop.time() - item.enqueued_at)
            try:
                utterance = await loop.run_in_executor(self._pool, self.engine.utterance, item.clause)  # type: ignore[attr-defined]
            except Exception as exc:  # a clause the frontend refuses fails alone
                item.future.set_exception(exc)
                continue
            rows[synth.submit(utterance)] = (item, [])  # type: ignore[attr-defined]

    def _account(self, audio: list[np.ndarray], elapsed: float, speech_s: float, *, streamed: bool) -> None:
        seconds = sum(a.size for a in audio) / self.engine.sample_rate
        self.metrics.batch_size.observe(len(audio))
        self.metrics.engine_busy.labels(engine=self.engine.name).inc(elapsed)
        (self.streamed_cost if streamed else self.cost).observe(speech_s, elapsed)
        self.audio_length.observe(speech_s, seconds)
        if seconds > 0:
            self.metrics.engine_rtf.labels(engine=self.engine.name).observe(elapsed / seconds)
            self.metrics.audio_seconds.labels(engine=self.engine.name).inc(seconds)
