"""WebRTC listeners: POST /v1/rtc/offer answers with one audio track carrying a room's speech.

An `RtcPeer` is a room member like a WebSocket connection: the room's binary frames
go to the room's shared `RoomSpeech` (mixed and paced once for every listener of the
room), its JSON messages to the data channel when the client opened one (the same
messages as the WebSocket; requests sent on it are served by the same `Session`).
A peer is closed, and leaves its rooms, when the client closes it, ICE fails, it
never connects, it leaves the room it listens to, or the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any, cast

from aiohttp import web
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from gateway import protocol
from gateway.connection import ClientConnection
from gateway.context import ServerContext
from gateway.http import ACCOUNT_KEY
from gateway.rtc_media import ListenerTrack, RoomSpeech
from gateway.session import Session
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.identity import Account

log = logging.getLogger(__name__)

MAX_SDP_CHARS = 64 * 1024
CONNECT_TIMEOUT_S = 30.0  # a peer that has not connected by then is closed
MAX_PEERS = 256
MAX_PEERS_PER_ACCOUNT = 4
# Data channel bytes queued but not yet sent; past this the client is not reading and is dropped.
MAX_CHANNEL_BUFFERED_BYTES = 1024 * 1024
# Requests received on the data channel and not yet served; a client this far ahead is flooding.
MAX_CHANNEL_INBOX = 64
_SPEECH_EVENT = '{"type":"speech_'  # how protocol.encode starts speech_start, speech_end, speech_error


class RtcPeer:
    """One browser (or bot) listening to one room over WebRTC; a room member with a non-blocking `send()`."""

    def __init__(self, account: Account, pc: RTCPeerConnection, speech: RoomSpeech, peers: RtcPeers) -> None:
        self.conn_id = "rtc-" + uuid.uuid4().hex
        self.account = account
        self.state = protocol.ConnectionState()
        self.pc = pc
        self.speech = speech  # the room this peer hears
        self.track: ListenerTrack = speech.subscribe()
        self.channel: RTCDataChannel | None = None
        self.closed = False
        self._peers = peers
        self._inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=MAX_CHANNEL_INBOX)
        self._reader: asyncio.Task[None] | None = None

    # ---- what the room calls ---------------------------------------------------------------

    def send(self, item: str | bytes) -> bool:
        if self.closed:
            return False
        if isinstance(item, bytes):
            try:
                self.speech.feed(item)
            except ValueError:
                log.warning("rtc peer %s: malformed audio frame ignored", self.conn_id[4:12])
            return True
        if item.startswith(_SPEECH_EVENT):
            self._follow_speech(item)
        return self._send_on_channel(item)

    def send_message(self, message: dict[str, Any]) -> bool:
        return self.send(protocol.encode(message))

    def _follow_speech(self, text: str) -> None:
        """speech_start of this peer's room opens an utterance for the mixer; its end closes it."""
        try:
            event = json.loads(text)
            utterance = uuid.UUID(event["utterance"])
        except (ValueError, KeyError, TypeError):
            return
        if event.get("type") == "speech_start":
            if event.get("room") == self.speech.room:
                self.speech.start(utterance)
        else:
            self.speech.end(utterance)

    def _send_on_channel(self, text: str) -> bool:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return True  # no data channel: the client follows the room over its WebSocket
        if channel.bufferedAmount > MAX_CHANNEL_BUFFERED_BYTES:
            log.warning("rtc peer %s (%s) stopped reading its data channel", self.conn_id[4:12], self.account.id)
            self._peers.close_soon(self)
            return False
        channel.send(text)
        return True

    # ---- requests on the data channel --------------------------------------------------------

    def attach_channel(self, channel: RTCDataChannel, session: Session) -> None:
        self.channel = channel

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if isinstance(message, str):
                try:
                    self._inbox.put_nowait(message)
                except asyncio.QueueFull:
                    log.warning("rtc peer %s (%s) flooded its data channel", self.conn_id[4:12], self.account.id)
                    self._peers.close_soon(self)
            else:
                session.handle_binary()

        self._reader = asyncio.get_running_loop().create_task(
            self._serve(session), name=f"rtc-channel-{self.conn_id[4:12]}"
        )

    async def _serve(self, session: Session) -> None:
        """Requests are served one at a time, in order, as on the WebSocket."""
        while not self.closed:
            text = await self._inbox.get()
            await session.handle_text(text)
            if self.speech.room not in self.state.rooms:  # it left the room it listens to
                self._peers.close_soon(self)

    async def stop_reading(self) -> None:
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class RtcPeers:
    """Every live peer of this server: created on an offer, closed exactly once."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._peers: dict[str, RtcPeer] = {}
        self._speech: dict[str, RoomSpeech] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._peers)

    def count(self, account_id: str) -> int:
        return sum(1 for peer in self._peers.values() if peer.account.id == account_id)

    async def answer(self, account: Account, room: str, offer: RTCSessionDescription) -> tuple[RtcPeer, str]:
        """Make the peer, join it to `room`, and return it with the SDP answer."""
        if len(self._peers) >= MAX_PEERS:
            raise VoxroomError(ErrorCode.OVERLOADED, "The server has as many audio listeners as it can take.")
        if self.count(account.id) >= MAX_PEERS_PER_ACCOUNT:
            raise VoxroomError(
                ErrorCode.RATE_LIMITED,
                f"At most {MAX_PEERS_PER_ACCOUNT} audio connections per account; close one first.",
            )
        # No STUN or TURN: host candidates only, which is what a loopback or LAN deployment needs.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        speech = self._speech.get(room) or self._speech.setdefault(
            room, RoomSpeech(room, on_frame_skipped=self.ctx.metrics.rtc_frames_skipped.inc)
        )
        peer = RtcPeer(account, pc, speech, self)
        self._peers[peer.conn_id] = peer
        try:
            pc.addTrack(peer.track)
            self._watch(peer)
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await self.close(peer)
            raise VoxroomError(ErrorCode.BAD_REQUEST, f"The SDP offer could not be used: {exc}") from exc
        if peer.closed:  # the connection failed while the answer was being made
            raise VoxroomError(ErrorCode.INTERNAL, "The audio connection closed before it was set up.")
        self._join(peer, room)
        self.ctx.spawn(self._close_unless_connected(peer), name=f"rtc-connect-{peer.conn_id[4:12]}")
        log.info("rtc peer %s opened by %s for room %s", peer.conn_id[4:12], account.id, room)
        return peer, pc.localDescription.sdp

    def _watch(self, peer: RtcPeer) -> None:
        pc = peer.pc
        session = Session(self.ctx, cast(ClientConnection, peer))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(peer)

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            peer.attach_channel(channel, session)

    async def _close_unless_connected(self, peer: RtcPeer) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if not peer.closed and peer.pc.connectionState != "connected":
            log.info("rtc peer %s never connected; closing it", peer.conn_id[4:12])
            await self.close(peer)

    def _join(self, peer: RtcPeer, room: str) -> None:
        hub = self.ctx.rooms
        existing = hub.get(room)
        if existing is None or not existing.has_account(peer.account.id):
            hub.broadcast(room, protocol.encode(protocol.member_joined(room, peer.account.id, peer.account.kind)))
        peer.state.rooms.add(room)
        hub.join(room, peer)
        self.ctx.metrics.rooms.set(len(hub))

    def _leave_rooms(self, peer: RtcPeer) -> None:
        hub = self.ctx.rooms
        for room in list(peer.state.rooms):
            peer.state.rooms.discard(room)
            left = hub.leave(room, peer.conn_id)
            if left is not None and not left.has_account(peer.account.id):
                hub.broadcast(room, protocol.encode(protocol.member_left(room, peer.account.id)))
        self.ctx.metrics.rooms.set(len(hub))

    def close_soon(self, peer: RtcPeer) -> None:
        """Close from code that cannot wait (a room's send, the channel's reader)."""
        if peer.closed:
            return
        task = asyncio.get_running_loop().create_task(self.close(peer), name=f"rtc-close-{peer.conn_id[4:12]}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self, peer: RtcPeer) -> None:
        if peer.closed:
            return
        peer.closed = True
        self._peers.pop(peer.conn_id, None)
        self._leave_rooms(peer)
        peer.track.stop()
        await peer.stop_reading()
        await peer.pc.close()
        speech = peer.speech
        if not speech.listeners and self._speech.get(speech.room) is speech:
            del self._speech[speech.room]
            await speech.close()
            log.info(
                "room %s: audio for WebRTC stopped after %d frames, %d with speech",
                speech.room,
                speech.mixer.frames_out,
                speech.mixer.speech_frames_out,
            )
        log.info("rtc peer %s (%s) closed", peer.conn_id[4:12], peer.account.id)

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(peer) for peer in list(self._peers.values())), return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)


RTC_PEERS_KEY: web.AppKey[RtcPeers] = web.AppKey("voxroom_rtc_peers", RtcPeers)


def _parse_offer(body: object) -> tuple[str, RTCSessionDescription]:
    if not isinstance(body, dict):
        raise VoxroomError(ErrorCode.BAD_REQUEST, 'The body must be a JSON object {"room", "sdp", "type": "offer"}.')
    unknown = sorted(set(body) - {"room", "sdp", "type"})
    if unknown:
        raise VoxroomError(ErrorCode.BAD_REQUEST, f"Unknown field(s): {', '.join(unknown)}; allowed: room, sdp, type.")
    room = body.get("room")
    if not isinstance(room, str) or not room.strip():
        raise VoxroomError(ErrorCode.BAD_REQUEST, "Field 'room' must be a non-empty string.")
    if len(room) > protocol.MAX_ROOM_CHARS or any(ord(ch) < 32 for ch in room):
        raise VoxroomError(
            ErrorCode.BAD_REQUEST, f"Field 'room' must be at most {protocol.MAX_ROOM_CHARS} printable characters."
        )
    if body.get("type") != "offer":
        raise VoxroomError(ErrorCode.BAD_REQUEST, "Field 'type' must be \"offer\".")
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise VoxroomError(ErrorCode.BAD_REQUEST, "Field 'sdp' must be the SDP text of a WebRTC offer.")
    if len(sdp) > MAX_SDP_CHARS:
        raise VoxroomError(ErrorCode.BAD_REQUEST, f"Field 'sdp' is longer than {MAX_SDP_CHARS} characters.")
    if "m=audio" not in sdp:
        raise VoxroomError(
            ErrorCode.BAD_REQUEST, "The offer has no audio section; add a receive-only audio transceiver."
        )
    return room, RTCSessionDescription(sdp=sdp, type="offer")


async def offer_handler(request: web.Request) -> web.Response:
    account = request[ACCOUNT_KEY]
    try:
        body = json.loads(await request.text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise VoxroomError(ErrorCode.BAD_REQUEST, "The body is not valid JSON.") from None
    room, offer = _parse_offer(body)
    if not account.may_join(room):
        raise VoxroomError(ErrorCode.FORBIDDEN, f"Your token does not allow room {room!r}.")
    peer, sdp = await request.app[RTC_PEERS_KEY].answer(account, room, offer)
    return web.json_response({"type": "answer", "sdp": sdp, "peer": peer.conn_id, "room": room})


def rtc_routes() -> list[web.RouteDef]:
    return [web.post("/v1/rtc/offer", offer_handler)]


def install_rtc(app: web.Application, ctx: ServerContext) -> None:
    """Register the offer endpoint and close every peer when the server shuts down."""
    peers = RtcPeers(ctx)
    app[RTC_PEERS_KEY] = peers
    # aioice logs every connectivity check at INFO: one line per candidate pair per peer.
    logging.getLogger("aioice").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    app.add_routes(rtc_routes())

    async def close_peers(app: web.Application) -> None:
        await peers.close_all()

    app.on_shutdown.append(close_peers)
