"""What one WebSocket connection's requests do: join, leave, say, ping.

The protocol core validates; this layer calls rooms, policy and synth, and turns
every VoxroomError into one `error` reply in one place.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

from gateway import protocol
from gateway.connection import ClientConnection
from gateway.context import ServerContext
from gateway.utterance import Utterance, run_utterance
from synth.speech import clause_timings, phrase_key, plan_clauses
from voxroom.errors import ErrorCode, VoxroomError

log = logging.getLogger(__name__)


class Session:
    def __init__(self, ctx: ServerContext, conn: ClientConnection) -> None:
        self.ctx = ctx
        self.conn = conn

    async def handle_text(self, data: str) -> None:
        request_id: str | None = None
        try:
            message = protocol.parse_client_text(data, max_text_chars=self.ctx.settings.max_text_chars)
            request_id = message.id
            self.ctx.metrics.messages_in.labels(type=type(message).__name__.lower()).inc()
            await self._dispatch(message)
        except VoxroomError as exc:
            self.reply_error(exc, request_id)
        except Exception:
            log.exception("connection %s: request failed", self.conn.conn_id[:8])
            self.reply_error(VoxroomError(ErrorCode.INTERNAL), request_id)

    def handle_binary(self) -> None:
        self.reply_error(protocol.binary_from_client())

    def reply_error(self, exc: VoxroomError, request_id: str | None = None) -> None:
        self.ctx.metrics.errors.labels(code=str(exc.code)).inc()
        self.conn.send_message(protocol.error_message(exc, request_id))

    async def _dispatch(self, message: protocol.ClientMessage) -> None:
        match message:
            case protocol.Ping():
                self.conn.send_message(protocol.pong(message.id))
            case protocol.Join():
                self._join(message)
            case protocol.Leave():
                self.conn.state.require_joined(message.room, message.id)
                self.leave_room(message.room)
                self.conn.send_message(protocol.left(message.room, message.id))
            case protocol.Say():
                await self._say(message)

    def _join(self, message: protocol.Join) -> None:
        account = self.conn.account
        if not account.may_join(message.room):
            raise protocol.ProtocolError(
                ErrorCode.FORBIDDEN, f"Your token does not allow room {message.room!r}.", request_id=message.id
            )
        if message.room not in self.conn.state.rooms:
            self.ctx.rooms.broadcast(
                message.room, protocol.encode(protocol.member_joined(message.room, account.id, account.kind))
            )
            self.conn.state.rooms.add(message.room)
        room = self.ctx.rooms.join(message.room, self.conn)
        self.ctx.metrics.rooms.set(len(self.ctx.rooms))
        self.conn.send_message(protocol.joined(message.room, room.roster(), message.id))

    def leave_room(self, room_name: str) -> None:
        self.conn.state.rooms.discard(room_name)
        if self.ctx.rooms.leave(room_name, self.conn.conn_id) is not None:
            self.ctx.rooms.broadcast(room_name, protocol.encode(protocol.member_left(room_name, self.conn.account.id)))
        self.ctx.metrics.rooms.set(len(self.ctx.rooms))

    def leave_all(self) -> None:
        for room_name in list(self.conn.state.rooms):
            self.leave_room(room_name)

    async def _say(self, message: protocol.Say) -> None:
        ctx, sender = self.ctx, self.conn.account
        self.conn.state.require_joined(message.room, message.id)
        clauses = plan_clauses(message.text, message.lang, first_streams=ctx.scheduler.streams_first_clause)
        resolved = await ctx.voices.resolve(message.voice, sender)
        key = phrase_key(clauses, resolved.voice, ctx.engine, watermarked=ctx.settings.watermark)
        cached = await ctx.cache.get(key) if key is not None else None
        # overloaded is refused here, before anything is charged; cached audio needs no engine time.
        playback = ctx.scheduler.admit(sender.id, None if cached is not None else clause_timings(clauses))
        try:
            permit = await ctx.policy.authorize_say(
                sender=sender,
                voice_owner=resolved.owner,
                room=message.room,
                text=message.text,
                connection_id=self.conn.conn_id,
            )
        except BaseException:
            ctx.scheduler.release(sender.id, playback)
            raise
        utterance = Utterance(
            id=uuid.uuid4(),
            room=message.room,
            sender=self.conn,
            text=message.text,
            clauses=clauses,
            voice=resolved.voice,
            permit=permit,
            playback=playback,
            cache_key=key,
            cached_packets=cached,
        )
        quota = dataclasses.asdict(permit.quota)
        self.conn.send_message(protocol.accepted(utterance.id, resolved.label, quota, message.id))
        ctx.spawn(run_utterance(ctx, utterance), name=f"utterance-{utterance.id.hex[:8]}")
