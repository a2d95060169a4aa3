"""Run one accepted utterance: speech_start, every Opus frame, then speech_end (or speech_error)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator

from gateway import protocol
from gateway.connection import ClientConnection
from gateway.context import ServerContext
from policy.service import SayPermit
from synth.admission import Playback
from synth.cache import PhraseKey
from synth.engines.base import Voice
from synth.scheduler import ClauseDropped
from synth.speech import Clause, UtteranceStats, duration_ms
from voxroom.errors import ErrorCode, VoxroomError

log = logging.getLogger(__name__)

# A clause arrives as a burst of frames; hand the loop to the connection writers this often.
YIELD_EVERY_FRAMES = 16


@dataclasses.dataclass
class Utterance:
    id: uuid.UUID
    room: str
    sender: ClientConnection
    text: str
    clauses: list[Clause]
    voice: Voice
    permit: SayPermit
    playback: Playback
    cache_key: PhraseKey | None = None
    cached_packets: list[bytes] | None = None
    drop_reason: VoxroomError | None = None


def _wanted_check(ctx: ServerContext, utterance: Utterance):  # type: ignore[no-untyped-def]
    """Asked before each clause is computed: is anyone still there, and is it still allowed?"""

    async def wanted() -> bool:
        if not ctx.rooms.is_active(utterance.room):
            utterance.drop_reason = VoxroomError(ErrorCode.INTERNAL, "Everyone left the room.")
            return False
        if utterance.sender.closed:
            utterance.drop_reason = VoxroomError(ErrorCode.INTERNAL, "The sender disconnected before this was spoken.")
            return False
        if not await ctx.policy.still_allowed(utterance.permit):
            utterance.drop_reason = VoxroomError(
                ErrorCode.CONSENT_REQUIRED, "The voice owner withdrew consent or the grant was revoked."
            )
            return False
        return True

    return wanted


async def _packets(ctx: ServerContext, utterance: Utterance, stats: UtteranceStats) -> AsyncIterator[bytes]:
    """The utterance's Opus packets: straight from the phrase cache, or rendered clause by clause."""
    if utterance.cached_packets is not None:
        for packet in utterance.cached_packets:
            yield packet
        return
    async for packet in ctx.speaker.packets(
        utterance.clauses,
        utterance.voice,
        _wanted_check(ctx, utterance),
        sender=utterance.sender.account.id,
        stats=stats,
        playback=utterance.playback,
    ):
        yield packet


async def run_utterance(ctx: ServerContext, utterance: Utterance) -> None:
    loop = asyncio.get_running_loop()
    accepted_at = loop.time()
    rooms, metrics = ctx.rooms, ctx.metrics
    start = protocol.speech_start(
        utterance.id, utterance.room, utterance.sender.account.id, utterance.voice.id, utterance.text
    )
    rooms.broadcast(utterance.room, protocol.encode(start))
    stats = UtteranceStats()
    sequence = 0
    keep: list[bytes] | None = [] if utterance.cache_key is not None and utterance.cached_packets is None else None
    try:
        async for packet in _packets(ctx, utterance, stats):
            if sequence == 0:
                cached = "true" if utterance.cached_packets is not None else "false"
                metrics.ttfa.labels(cached=cached).observe(loop.time() - accepted_at)
            metrics.frames_out.inc(rooms.broadcast(utterance.room, protocol.pack_frame(utterance.id, sequence, packet)))
            sequence += 1
            if keep is not None:
                keep.append(packet)
            if sequence % YIELD_EVERY_FRAMES == 0:
                await asyncio.sleep(0)  # let the writers drain a clause's burst before queues fill
        end = protocol.speech_end(utterance.id, sequence, duration_ms(sequence))
        rooms.broadcast(utterance.room, protocol.encode(end))
        metrics.utterances.labels(outcome="spoken").inc()
        if keep is not None and utterance.cache_key is not None:
            await ctx.cache.put(utterance.cache_key, keep)
    except ClauseDropped:
        reason = utterance.drop_reason or VoxroomError(ErrorCode.INTERNAL, "The message was dropped.")
        rooms.broadcast(utterance.room, protocol.encode(protocol.speech_error(utterance.id, reason)))
        metrics.utterances.labels(outcome="dropped").inc()
        if sequence == 0:  # nothing was heard: it costs no quota
            await ctx.policy.refund(utterance.permit)
    except VoxroomError as exc:
        rooms.broadcast(utterance.room, protocol.encode(protocol.speech_error(utterance.id, exc)))
        metrics.utterances.labels(outcome="failed").inc()
    except Exception:
        log.exception("utterance %s failed", utterance.id)
        failure = VoxroomError(ErrorCode.INTERNAL, "Synthesis failed for this message.")
        rooms.broadcast(utterance.room, protocol.encode(protocol.speech_error(utterance.id, failure)))
        metrics.utterances.labels(outcome="failed").inc()
    finally:
        ctx.scheduler.release(utterance.sender.account.id, utterance.playback)
