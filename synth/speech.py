"""One utterance from text to Opus packets, streamed clause by clause.

plan(): normalise the text and split it into clauses, each with its language.
packets(): render clause 1, encode, yield its packets at once; clause 2 is queued
with a deadline set by how much audio is already out, and so on. Nothing waits for
the whole utterance.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable

import numpy as np

from synth.cache import MAX_CACHED_TEXT_CHARS, PhraseKey
from synth.engines.base import ClauseRequest, Engine, Voice
from synth.opus import FRAME_MS, OpusStream, silence
from synth.scheduler import Scheduler, WantedCheck
from synth.text.normalize import dominant_language, normalize_text
from synth.text.segment import split_clauses
from voxroom.errors import ErrorCode, VoxroomError

# Pause after a clause, by how it ends: a sentence end breathes longer than a comma.
SENTENCE_PAUSE_S = 0.28
CLAUSE_PAUSE_S = 0.12
# A continuation is due this long before the audio already sent runs out.
CONTINUATION_MARGIN_S = 0.4

ChunkFilter = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Clause:
    text: str
    lang: str

    @property
    def pause_after_s(self) -> float:
        return SENTENCE_PAUSE_S if self.text[-1:] in "。！？!?.；;…" else CLAUSE_PAUSE_S


def plan_clauses(text: str, lang: str = "auto") -> list[Clause]:
    """Clauses of a message in speaking order; bad_request when nothing in it can be spoken."""
    language = dominant_language(text) if lang in ("auto", "", None) else lang
    spoken = normalize_text(text, language)
    if not spoken:
        raise VoxroomError(ErrorCode.BAD_REQUEST, "There is nothing speakable in this text (only emoji or symbols).")
    return [Clause(text=c, lang=language) for c in split_clauses(spoken)]


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

    def _encode(self, encoder: OpusStream, audio: np.ndarray, pause_s: float) -> list[bytes]:
        if self.chunk_filter is not None and audio.size:
            audio = self.chunk_filter(audio, self.engine.sample_rate)
        if pause_s > 0:
            audio = np.concatenate([audio, silence(pause_s, self.engine.sample_rate)])
        return encoder.encode(audio)

    async def packets(
        self,
        clauses: list[Clause],
        voice: Voice,
        wanted: WantedCheck,
        *,
        sender: str,
        stats: UtteranceStats | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield Opus packets (20 ms each) as each clause is rendered."""
        loop = asyncio.get_running_loop()
        stats = stats if stats is not None else UtteranceStats()
        encoder = OpusStream(self.engine.sample_rate)
        playback_started: float | None = None
        for index, clause in enumerate(clauses):
            if playback_started is None:
                deadline = self.scheduler.first_clause_deadline(loop.time(), sender)
            else:
                deadline = playback_started + stats.audio_s - CONTINUATION_MARGIN_S
            request = ClauseRequest(text=clause.text, lang=clause.lang, voice=voice)
            audio = await self.scheduler.submit(request, deadline=deadline, wanted=wanted)
            last = index == len(clauses) - 1
            pause = 0.0 if last else clause.pause_after_s
            packets = await asyncio.to_thread(self._encode, encoder, audio, pause)
            if last:
                packets += await asyncio.to_thread(encoder.flush)
            if packets and playback_started is None:
                playback_started = loop.time()
            stats.audio_s += audio.size / self.engine.sample_rate + pause
            for packet in packets:
                stats.packets += 1
                yield packet
        if stats.packets == 0:
            raise VoxroomError(ErrorCode.INTERNAL, "The engine produced no audio for this text.")


def phrase_key(clauses: list[Clause], voice: Voice, engine: Engine, *, watermarked: bool) -> PhraseKey | None:
    """The cache key of a short message, or None when it is too long to be worth caching."""
    text = " ".join(c.text for c in clauses)
    if len(text) > MAX_CACHED_TEXT_CHARS:
        return None
    lang = clauses[0].lang if clauses else "auto"
    return PhraseKey(voice.id, voice.version, text, lang, engine.name, engine.model_version, watermarked)


def duration_ms(packet_count: int) -> int:
    return packet_count * FRAME_MS
