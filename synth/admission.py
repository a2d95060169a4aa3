"""Will the engine keep up? Predict render cost and simulate the queue before admitting an utterance.

Counting utterances in flight (the old admission rule) says nothing about whether they can all be
rendered in time: ten short replies are cheap, three paragraphs are not. Here every queued clause
carries its predicted render time, and admission replays the scheduler's own order (latest start
time first) on the engine's workers to see when each clause would finish:

- a first clause must be heard by its utterance's arrival + `max_first_audio_s` + its own predicted
  first-audio time (the wait behind other work is what is bounded, not the machine's speed);
- a continuation must finish before the audio already predicted for its utterance runs out
  (the predicted moment its first clause is out, plus the audio of the clauses before it).

An utterance is admitted only if, with it added, no clause is predicted late. So the queue never
holds more than the engine can render on time, and `overloaded` means exactly that.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable

# Until enough calls have been measured: ~0.15 s per call plus ~0.55 s per second of speech
# (Kokoro int8, two threads, measured on a 2-core machine).
INITIAL_CALL_S = 0.15
INITIAL_PER_AUDIO_S = 0.55
FORGETTING = 0.95  # per call: the model follows the machine's current speed over the last ~20 calls
MIN_SAMPLES = 8


class RenderCostModel:
    """Seconds one engine call takes, as a + b * (predicted seconds of speech), fitted online.

    A per-call term matters: a two-word clause costs far more than its length suggests (measured:
    0.26 s for 0.5 s of speech, 0.65 s for 1.3 s).
    """

    def __init__(self, call_s: float = INITIAL_CALL_S, per_audio_s: float = INITIAL_PER_AUDIO_S) -> None:
        self.call_s = call_s
        self.per_audio_s = per_audio_s
        # Exponentially weighted sums for least squares of elapsed on speech seconds.
        self._n = self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._samples = 0

    def predict(self, speech_s: float) -> float:
        return self.call_s + self.per_audio_s * speech_s

    def __str__(self) -> str:
        return f"{self.call_s:.2f} s per call + {self.per_audio_s:.2f} s per speech s"

    def seed(self, samples: list[tuple[float, float]]) -> None:
        """Start from calls measured on this machine (speech seconds, elapsed seconds), fitted at once.

        The defaults were measured on one machine; another may be several times slower (measured: 2.3x on a
        CPU without VNNI), and admission there would admit what it cannot render until MIN_SAMPLES calls
        have been seen.
        """
        for speech_s, elapsed_s in samples:
            self._accumulate(speech_s, elapsed_s)
        if samples:
            self._samples = max(self._samples, MIN_SAMPLES)
            self._fit()

    def observe(self, speech_s: float, elapsed_s: float) -> None:
        self._accumulate(speech_s, elapsed_s)
        if self._samples >= MIN_SAMPLES:
            self._fit()

    def _accumulate(self, speech_s: float, elapsed_s: float) -> None:
        f = FORGETTING
        self._n = f * self._n + 1
        self._sx = f * self._sx + speech_s
        self._sy = f * self._sy + elapsed_s
        self._sxx = f * self._sxx + speech_s * speech_s
        self._sxy = f * self._sxy + speech_s * elapsed_s
        self._samples += 1

    def _fit(self) -> None:
        spread = self._n * self._sxx - self._sx * self._sx
        if spread <= 1e-9 * max(1.0, self._n * self._sxx):  # all calls the same length: keep the intercept
            self.per_audio_s = max(1e-3, (self._sy - self.call_s * self._n) / max(self._sx, 1e-9))
            return
        slope = (self._n * self._sxy - self._sx * self._sy) / spread
        intercept = (self._sy - slope * self._sx) / self._n
        if slope > 0:
            self.per_audio_s = slope
            self.call_s = max(0.0, intercept)


class AudioLengthModel:
    """Seconds of audio the engine makes per second of speech predicted from the text, averaged online.

    The text's prediction (`spoken_seconds`) runs short for Kokoro (measured: 1.36 s of audio for a
    clause predicted at 1.0 s); continuations are due when the audio ahead of them runs out, so an
    uncorrected prediction makes admission refuse streams that would have played without a gap.
    """

    def __init__(self, ratio: float = 1.0) -> None:
        self.ratio = ratio
        self._speech = self._audio = 0.0

    def observe(self, speech_s: float, audio_s: float) -> None:
        if speech_s <= 0:
            return
        self._speech = FORGETTING * self._speech + speech_s
        self._audio = FORGETTING * self._audio + audio_s
        self.ratio = self._audio / self._speech


class Playback:
    """When an utterance's first audio went out (known) or must go out (its first-audio deadline)."""

    __slots__ = ("due", "first_deadline", "started")

    def __init__(self, due: float) -> None:
        self.due = due  # the latest acceptable time for its first audio
        # Set when admission queued its first clause behind work it would otherwise have made late (the
        # scheduler's deadline for it; None: the usual one, `Scheduler.first_clause_deadline`).
        self.first_deadline: float | None = None
        self.started: float | None = None


def audio_ahead_s(heard_before_s: float, audio_before_s: float, audio_per_speech: float) -> float:
    """Seconds of audio an utterance plays before one of its clauses: what is rendered already, exactly, and the
    predicted rest (in predicted speech seconds) scaled by the learned audio per speech second."""
    return heard_before_s + audio_before_s * audio_per_speech


@dataclasses.dataclass(frozen=True)
class PlannedClause:
    """One clause as admission sees it."""

    order: float  # the scheduler's key: latest start time
    cost_s: float  # predicted render seconds
    playback: Playback
    first: bool
    audio_before_s: float  # predicted audio of the clauses before it in its utterance (in predicted speech seconds)
    # For a first clause the engine streams: seconds from the start of its render to its first audio. None: its
    # audio is ready when the whole clause is.
    first_audio_s: float | None = None
    # Audio before it that is rendered already, in real seconds (not scaled by the learned audio per speech
    # second, as the predicted `audio_before_s` is): set once its utterance is playing (`Scheduler.retime`).
    heard_before_s: float = 0.0

    def audio_ahead_s(self, audio_per_speech: float) -> float:
        """Seconds of audio its utterance plays before it."""
        return audio_ahead_s(self.heard_before_s, self.audio_before_s, audio_per_speech)


def _finish_times(
    clauses: list[PlannedClause], now: float, workers_free_at: Iterable[float], workers: int
) -> list[float]:
    """Replay the queue in scheduler order on `workers` workers: when each clause would finish."""
    free = sorted(max(now, t) for t in workers_free_at)[:workers]
    free += [now] * (workers - len(free))
    heapq.heapify(free)
    finish = [0.0] * len(clauses)
    for index in sorted(range(len(clauses)), key=lambda i: clauses[i].order):
        finish[index] = heapq.heappop(free) + clauses[index].cost_s
        heapq.heappush(free, finish[index])
    return finish


def _start_times(
    clauses: list[PlannedClause], finish: list[float], now: float, audio_per_speech: float, tolerance_s: float
) -> dict[int, float]:
    """When each utterance not yet playing would start: once its first clause is ready and late enough that every
    continuation is ready (within the tolerance) before the audio ahead of it runs out (see `Scheduler.hold`)."""
    start: dict[int, float] = {}
    for clause, done in zip(clauses, finish, strict=True):
        if clause.playback.started is not None:
            continue
        if not clause.first:
            needed = done - clause.audio_ahead_s(audio_per_speech) - tolerance_s
        elif clause.first_audio_s is not None:  # streamed: heard once its first piece is out
            needed = done - clause.cost_s + min(clause.first_audio_s, clause.cost_s)
        else:
            needed = done
        key = id(clause.playback)
        start[key] = max(start.get(key, now), needed)
    return start


@dataclasses.dataclass(frozen=True)
class QueueReplay:
    """The engine as admission sees it right now: its workers, when each is free, and the learned audio length."""

    now: float
    workers: int
    workers_free_at: tuple[float, ...] = ()
    audio_per_speech: float = 1.0
    tolerance_s: float = 0.0  # predicted lateness a player's jitter buffer hides

    def lateness(self, clauses: list[PlannedClause]) -> list[float]:
        """How late each clause would be past its due time (negative: it has that much slack), in the order given.

        A first clause is late when its utterance would start playing after its first-audio deadline; a
        continuation when it would finish after the audio ahead of it has run out.
        """
        finish = _finish_times(clauses, self.now, self.workers_free_at, self.workers)
        starts = _start_times(clauses, finish, self.now, self.audio_per_speech, self.tolerance_s)
        late = [0.0] * len(clauses)
        for index, clause in enumerate(clauses):
            playback = clause.playback
            started = playback.started if playback.started is not None else starts[id(playback)]
            if clause.first:
                late[index] = started - playback.due
            else:
                late[index] = finish[index] - (started + clause.audio_ahead_s(self.audio_per_speech))
        return late

    def drained_at(self, clauses: list[PlannedClause]) -> float:
        """When the workers would have rendered everything queued."""
        return max(_finish_times(clauses, self.now, self.workers_free_at, self.workers), default=self.now)

    def start_time(self, playback: Playback, clauses: list[PlannedClause]) -> float:
        """When `playback`'s utterance should start playing so that its queued continuations arrive in time."""
        finish = _finish_times(clauses, self.now, self.workers_free_at, self.workers)
        starts = _start_times(clauses, finish, self.now, self.audio_per_speech, self.tolerance_s)
        return starts.get(id(playback), self.now)

    def added_lateness(self, queued: list[PlannedClause], new: list[PlannedClause]) -> float:
        """How much later than it would be anyway some clause gets if `new` joins the queue (<= 0: none does).

        "Anyway" is the queue without the newcomer for queued clauses, and the newcomer alone on idle
        workers for its own: a clause too long to ever be on time (a paragraph's first clause, a long
        continuation right after a short one) is not the newcomer's fault and must not refuse everyone.
        """
        return self.worst_added(queued, new).lateness_s

    def worst_added(self, queued: list[PlannedClause], new: list[PlannedClause]) -> Blame:
        """`added_lateness`, and which clause it falls on."""
        before = self.lateness(queued)
        alone = dataclasses.replace(self, workers_free_at=()).lateness(new)
        after = self.lateness(queued + new)
        baseline = [max(self.tolerance_s, x) for x in before + alone]
        added = [late - base for late, base in zip(after, baseline, strict=True)]
        if not added:
            return Blame(0.0, newcomer=True, first=True)
        worst = max(range(len(added)), key=added.__getitem__)
        return Blame(added[worst], newcomer=worst >= len(queued), first=(queued + new)[worst].first)


@dataclasses.dataclass(frozen=True)
class Blame:
    """The most lateness a newcomer adds, and to which clause: its own, or one queued before it."""

    lateness_s: float
    newcomer: bool  # False: a clause already queued (another message's first audio, or a stream running dry)
    first: bool

    def __str__(self) -> str:
        what = "first audio" if self.first else "continuation"
        return f"its {what}" if self.newcomer else f"a {what} queued"
