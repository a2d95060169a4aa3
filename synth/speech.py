"""One utterance from text to Opus packets, streamed clause by clause.

plan(): normalise the text and split it into clauses, each with its language.
packets(): queue every clause at once (a continuation is due when the audio predicted
ahead of it runs out, so idle compute renders ahead), then encode and yield each clause's
packets as soon as it and those before it are rendered; the first clause piece by piece
as the engine streams it (its first words before the rest). The first audio is held only as
long as needed for the continuations, as queued, to arrive before the audio ahead of them
runs out (never past the first-audio deadline); once it is out, the continuations are
re-timed from when it actually went out. Nothing waits for the whole utterance.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Callable

import numpy as np

from synth.admission import Playback
from synth.cache import MAX_CACHED_TEXT_CHARS, PhraseKey
from synth.engines.base import ClauseRequest, Engine, Voice
from synth.opus import FRAME_MS, OpusStream, silence
from synth.scheduler import ClauseTiming, Scheduler, WantedCheck
from synth.text.normalize import dominant_language, normalize_text
from synth.text.segment import split_clauses, spoken_seconds
from voxroom.errors import ErrorCode, VoxroomError

log = logging.getLogger(__name__)

# Audio leaving this much later than its place in the stream is a gap for a listener: about what a WebSocket
# client's jitter buffer holds (bench/load.py plays 200 ms behind the first frame).
LISTENER_BUFFER_S = 0.2

# Every piece the engine hands over is encoded in two parts, its first this-many seconds alone, so its first packets
# leave without waiting for the whole piece's watermark and Opus encoding (traced: 20-50 ms for a first piece while
# the engine decodes the rest on the same two cores; the first piece is what the listener waits for, and a later
# piece's first frames are the ones that arrive late when a stream runs short). bench/ttfa.py could not tell the
# difference in 7 alternating pairs (README). Long enough to carry the watermark (MIN_EMBED_SECONDS, 0.1 s) and to
# play while the rest of the piece is encoded.
FIRST_SEND_S = 0.16

# Pause after a clause, by how it ends: a sentence end breathes longer than a comma.
SENTENCE_PAUSE_S = 0.28
CLAUSE_PAUSE_S = 0.12

ChunkFilter = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Clause:
    text: str
    lang: str

    @property
    def pause_after_s(self) -> float:
        return SENTENCE_PAUSE_S if self.text[-1:] in "。！？!?.；;…" else CLAUSE_PAUSE_S


def plan_clauses(text: str, lang: str = "auto", *, first_streams: bool = False) -> list[Clause]:
    """Clauses of a message in speaking order; bad_request when nothing in it can be spoken.

    `first_streams`: the first clause will be streamed (`Scheduler.streams_first_clause`), so it may be longer.
    """
    language = dominant_language(text) if lang in ("auto", "", None) else lang
    spoken = normalize_text(text, language)
    if not spoken:
        raise VoxroomError(ErrorCode.BAD_REQUEST, "There is nothing speakable in this text (only emoji or symbols).")
    return [Clause(text=c, lang=language) for c in split_clauses(spoken, first_streams=first_streams)]


def first_send_parts(piece: np.ndarray, sample_rate: int) -> list[np.ndarray]:
    """A piece as [its first FIRST_SEND_S, the rest], or whole when it is not much longer."""
    cut = int(FIRST_SEND_S * sample_rate)
    return [piece] if piece.size < 2 * cut else [piece[:cut], piece[cut:]]


def clause_timings(clauses: list[Clause]) -> list[ClauseTiming]:
    """Predicted speech of each clause and audio (speech and pauses) before it: for admission and deadlines."""
    timings, before = [], 0.0
    for index, clause in enumerate(clauses):
        speech = spoken_seconds(clause.text, clause.lang)
        timings.append(ClauseTiming(speech_s=speech, audio_before_s=before))
        before += speech + (clause.pause_after_s if index < len(clauses) - 1 else 0.0)
    return timings


@dataclasses.dataclass
class UtteranceStats:
    packets: int = 0
    audio_s: float = 0.0


class Speaker:
    def __init__(self, engine: Engine, scheduler: Scheduler, *, chunk_filter: ChunkFilter | None = None) -> None:
        self.engine = engine
        self.scheduler = scheduler
        # Runs on each clause's PCM before encoding (e.g. the watermark); off the event loop.
        self.chunk_filter = chunk_filter

    def _encode(self, encoder: OpusStream, audio: np.ndarray) -> list[bytes]:
        if self.chunk_filter is not None and audio.size:
            audio = self.chunk_filter(audio, self.engine.sample_rate)
        return encoder.encode(audio)

    def _finish_clause(self, encoder: OpusStream, pause_s: float, last: bool) -> list[bytes]:
        """The pause after a clause, or the encoder's last frame after the utterance's last clause."""
        packets = encoder.encode(silence(pause_s, self.engine.sample_rate)) if pause_s > 0 else []
        return packets + encoder.flush() if last else packets

    @staticmethod
    async def _rendered(
        future: asyncio.Future[np.ndarray], pieces: asyncio.Queue[np.ndarray]
    ) -> AsyncIterator[np.ndarray]:
        """A clause's audio as it is rendered: its pieces as they come when it streams, else the whole at once."""
        while True:
            if not pieces.empty():
                yield pieces.get_nowait()
                continue
            if future.done():
                future.result()  # a failed or dropped clause raises here, after any pieces it did render
                return
            getter = asyncio.ensure_future(pieces.get())
            try:
                await asyncio.wait({getter, future}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled():
                yield getter.result()

    async def _start_playback(self, playback: Playback) -> None:
        """Before an utterance's first packets: hold them as long as admission asks, then mark it playing."""
        if playback.started is not None:
            return
        held = self.scheduler.hold(playback)
        if held > 0:
            await asyncio.sleep(held)
        self.scheduler.metrics.first_audio_hold.observe(held)
        playback.started = asyncio.get_running_loop().time()

    async def packets(
        self,
        clauses: list[Clause],
        voice: Voice,
        wanted: WantedCheck,
        *,
        sender: str,
        stats: UtteranceStats | None = None,
        playback: Playback | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield Opus packets (20 ms each) as each clause is rendered.

        `playback` is what admission returned for this utterance (its first-audio deadline).
        """
        loop = asyncio.get_running_loop()
        stats = stats if stats is not None else UtteranceStats()
        playback = playback if playback is not None else Playback(loop.time() + self.scheduler.max_first_audio_s)
        timings = clause_timings(clauses)
        first_deadline = (
            playback.first_deadline
            if playback.first_deadline is not None
            else self.scheduler.first_clause_deadline(loop.time(), sender)
        )
        futures: list[asyncio.Future[np.ndarray]] = []
        # The first clause is heard piece by piece as the engine renders it: its first words go out before the
        # rest of it is decoded. Later clauses have the audio ahead of them to hide their render time, and are
        # streamed only when that audio would run out first (the scheduler decides when it starts one).
        pieces: list[asyncio.Queue[np.ndarray]] = [asyncio.Queue() for _ in clauses]
        for clause, timing in zip(clauses, timings, strict=True):
            deadline = (
                self.scheduler.continuation_deadline(first_deadline, timing.audio_before_s)
                if futures
                else first_deadline
            )
            request = ClauseRequest(text=clause.text, lang=clause.lang, voice=voice)
            futures.append(
                self.scheduler.submit(
                    request,
                    deadline=deadline,
                    wanted=wanted,
                    playback=playback,
                    audio_before_s=timing.audio_before_s,
                    speech_s=timing.speech_s,
                    pieces=pieces[len(futures)],
                )
            )
        encoder = OpusStream(self.engine.sample_rate)
        retimed = False
        lateness = _Lateness()
        try:
            for index, clause in enumerate(clauses):
                async for piece in self._rendered(futures[index], pieces[index]):
                    place = stats.audio_s  # where this piece starts in the stream
                    observed = False
                    for part in first_send_parts(piece, self.engine.sample_rate):
                        packets = await asyncio.to_thread(self._encode, encoder, part)
                        stats.audio_s += part.size / self.engine.sample_rate
                        if packets:
                            await self._start_playback(playback)
                            assert playback.started is not None
                            if not observed:  # the engine's piece, not the parts it is sent in, is late or not
                                lateness.observe(loop.time() - playback.started - place, index)
                                observed = True
                        for packet in packets:
                            stats.packets += 1
                            yield packet
                last = index == len(clauses) - 1
                pause = 0.0 if last else clause.pause_after_s
                packets = await asyncio.to_thread(self._finish_clause, encoder, pause, last)
                stats.audio_s += pause
                if packets:
                    await self._start_playback(playback)
                if playback.started is not None and not retimed and not last:
                    # The rest is due from when the first audio went out, after the real audio so far and the
                    # audio predicted between.
                    retimed = True
                    predicted_so_far = timings[index + 1].audio_before_s
                    later = range(index + 1, len(timings))
                    self.scheduler.retime(
                        playback.started,
                        stats.audio_s,
                        {futures[j]: timings[j].audio_before_s - predicted_so_far for j in later},
                    )
                for packet in packets:
                    stats.packets += 1
                    yield packet
        finally:
            for future in futures:  # an early exit (dropped, failed, closed) frees what is still queued
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # retrieved: a dropped clause after the first is not worth a warning
        if stats.packets == 0:
            raise VoxroomError(ErrorCode.INTERNAL, "The engine produced no audio for this text.")
        self._report_lateness(lateness, len(clauses))

    def _report_lateness(self, lateness: _Lateness, clauses: int) -> None:
        """Count a gap the way a listener hears it, so one on call sees it without a client: an utterance heard in
        several pieces whose latest piece left more than LISTENER_BUFFER_S after its place in the stream."""
        if lateness.pieces < 2:
            return
        metrics = self.scheduler.metrics
        metrics.stream_lateness.observe(lateness.worst_s)
        if lateness.worst_s > LISTENER_BUFFER_S:
            metrics.stream_underruns.inc()
            log.info(
                "stream ran dry: clause %d of %d left %.2f s after its place in the stream (%d clauses queued)",
                lateness.worst_clause + 1, clauses, lateness.worst_s, self.scheduler.queued,
            )


class _Lateness:
    """The worst lateness of an utterance's pieces against their places in the stream, and which clause it was."""

    def __init__(self) -> None:
        self.worst_s = -math.inf
        self.worst_clause = 0
        self.pieces = 0

    def observe(self, late_s: float, clause: int) -> None:
        self.pieces += 1
        if self.pieces == 1:
            return  # the first piece starts the stream: it is never late
        if late_s > self.worst_s:
            self.worst_s, self.worst_clause = late_s, clause


def phrase_key(clauses: list[Clause], voice: Voice, engine: Engine, *, watermarked: bool) -> PhraseKey | None:
    """The cache key of a short message, or None when it is too long to be worth caching."""
    text = " ".join(c.text for c in clauses)
    if len(text) > MAX_CACHED_TEXT_CHARS:
        return None
    lang = clauses[0].lang if clauses else "auto"
    return PhraseKey(voice.id, voice.version, text, lang, engine.name, engine.model_version, watermarked)


def duration_ms(packet_count: int) -> int:
    return packet_count * FRAME_MS
