"""The WebSocket protocol core, without I/O: parse and validate client messages, build replies.

Nothing here imports asyncio or touches a socket. The connection layer feeds it text
and binary frames and sends what it returns; every error path is a plain function
call in the unit tests.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import uuid
from typing import Any

from voxroom.errors import ErrorCode, VoxroomError

MAX_TEXT_FRAME_BYTES = 16 * 1024  # a larger client frame is refused with bad_request
MAX_ID_CHARS = 128
MAX_ROOM_CHARS = 128
LANGS = ("auto", "zh", "en", "ja")
FRAME_HEADER = struct.Struct(">16sI")  # utterance id (raw UUID bytes), big-endian sequence


class ProtocolError(VoxroomError):
    """A refusal tied to one client request; carries the request's id for the reply."""

    def __init__(self, code: ErrorCode, message: str | None = None, *, request_id: str | None = None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


@dataclasses.dataclass(frozen=True)
class Join:
    room: str
    id: str | None = None


@dataclasses.dataclass(frozen=True)
class Leave:
    room: str
    id: str | None = None


@dataclasses.dataclass(frozen=True)
class Say:
    room: str
    text: str
    voice: str | None = None
    lang: str = "auto"
    id: str | None = None


@dataclasses.dataclass(frozen=True)
class Ping:
    id: str | None = None


ClientMessage = Join | Leave | Say | Ping


def _bad(message: str, request_id: str | None = None) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, message, request_id=request_id)


def _room(obj: dict[str, Any], request_id: str | None) -> str:
    room = obj.get("room")
    if not isinstance(room, str) or not room.strip():
        raise _bad("Field 'room' must be a non-empty string.", request_id)
    if len(room) > MAX_ROOM_CHARS or any(ord(ch) < 32 for ch in room):
        raise _bad(f"Field 'room' must be at most {MAX_ROOM_CHARS} printable characters.", request_id)
    return room


def parse_client_text(data: str, *, max_text_chars: int) -> ClientMessage:
    """Validate one text frame from a client and return the typed request, or raise ProtocolError."""
    if len(data.encode("utf-8", errors="surrogatepass")) > MAX_TEXT_FRAME_BYTES:
        raise _bad(f"Message too large: frames are limited to {MAX_TEXT_FRAME_BYTES} bytes.")
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, RecursionError):
        raise _bad("Malformed JSON: each text frame must be one JSON object.") from None
    if not isinstance(obj, dict):
        raise _bad("Each text frame must be a JSON object with a 'type'.")
    request_id = obj.get("id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > MAX_ID_CHARS):
        raise _bad(f"Field 'id' must be a string of at most {MAX_ID_CHARS} characters.")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise _bad("Field 'type' is missing or not a string.", request_id)
    if kind == "ping":
        return Ping(id=request_id)
    if kind == "join":
        return Join(room=_room(obj, request_id), id=request_id)
    if kind == "leave":
        return Leave(room=_room(obj, request_id), id=request_id)
    if kind == "say":
        return _parse_say(obj, request_id, max_text_chars)
    raise _bad(f"Unknown message type {kind!r}; expected join, leave, say or ping.", request_id)


def _parse_say(obj: dict[str, Any], request_id: str | None, max_text_chars: int) -> Say:
    room = _room(obj, request_id)
    text = obj.get("text")
    if not isinstance(text, str):
        raise _bad("Field 'text' must be a string.", request_id)
    if not text.strip():
        raise _bad("Field 'text' is empty: there is nothing to say.", request_id)
    if len(text) > max_text_chars:
        raise _bad(f"Text is too long: at most {max_text_chars} characters per message.", request_id)
    voice = obj.get("voice")
    if voice is not None and (not isinstance(voice, str) or not voice.strip()):
        raise _bad("Field 'voice' must be an account id or 'stock:NAME'.", request_id)
    lang = obj.get("lang", "auto")
    if lang not in LANGS:
        raise _bad(f"Field 'lang' must be one of {', '.join(LANGS)}.", request_id)
    return Say(room=room, text=text, voice=voice, lang=lang, id=request_id)


def binary_from_client() -> ProtocolError:
    return _bad("Binary frames are not accepted from clients; send JSON text frames.")


class ConnectionState:
    """Which rooms one connection has joined; the checks that need only that."""

    def __init__(self) -> None:
        self.rooms: set[str] = set()

    def require_joined(self, room: str, request_id: str | None) -> None:
        if room not in self.rooms:
            raise ProtocolError(
                ErrorCode.NOT_IN_ROOM, f"You have not joined room {room!r}; send join first.", request_id=request_id
            )


# ---- server messages ---------------------------------------------------------------


def _with_id(message: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    if request_id is not None:
        message["id"] = request_id
    return message


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def error_message(exc: VoxroomError, request_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "error", "code": str(exc.code), "message": exc.message}
    if exc.retry_after_s is not None:
        message["retry_after_s"] = round(float(exc.retry_after_s), 3)
    for key, value in exc.details.items():
        message.setdefault(key, value)
    if isinstance(exc, ProtocolError) and request_id is None:
        request_id = exc.request_id
    return _with_id(message, request_id)


def joined(room: str, members: list[dict[str, str]], request_id: str | None) -> dict[str, Any]:
    return _with_id({"type": "joined", "room": room, "members": members}, request_id)


def left(room: str, request_id: str | None) -> dict[str, Any]:
    return _with_id({"type": "left", "room": room}, request_id)


def member_joined(room: str, account: str, kind: str) -> dict[str, Any]:
    return {"type": "member_joined", "room": room, "account": account, "kind": kind}


def member_left(room: str, account: str) -> dict[str, Any]:
    return {"type": "member_left", "room": room, "account": account}


def pong(request_id: str | None) -> dict[str, Any]:
    return _with_id({"type": "pong"}, request_id)


def accepted(utterance: uuid.UUID, voice: str, quota: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    return _with_id({"type": "accepted", "utterance": str(utterance), "voice": voice, "quota": quota}, request_id)


def speech_start(utterance: uuid.UUID, room: str, sender: str, voice: str, text: str) -> dict[str, Any]:
    return {
        "type": "speech_start",
        "utterance": str(utterance),
        "room": room,
        "from": sender,
        "voice": voice,
        "text": text,
        "codec": "opus",
        "sample_rate": 48000,
        "channels": 1,
        "frame_ms": 20,
    }


def speech_end(utterance: uuid.UUID, frames: int, duration_ms: int) -> dict[str, Any]:
    return {"type": "speech_end", "utterance": str(utterance), "frames": frames, "duration_ms": duration_ms}


def speech_error(utterance: uuid.UUID, exc: VoxroomError) -> dict[str, Any]:
    return {"type": "speech_error", "utterance": str(utterance), "code": str(exc.code), "message": exc.message}


def pack_frame(utterance: uuid.UUID, sequence: int, packet: bytes) -> bytes:
    return FRAME_HEADER.pack(utterance.bytes, sequence) + packet


def unpack_frame(frame: bytes) -> tuple[uuid.UUID, int, bytes]:
    if len(frame) < FRAME_HEADER.size:
        raise ValueError("audio frame shorter than its 20-byte header")
    raw_id, sequence = FRAME_HEADER.unpack_from(frame)
    return uuid.UUID(bytes=raw_id), sequence, frame[FRAME_HEADER.size :]
