"""The protocol core, with no socket: every error the core can reach on its own."""

from __future__ import annotations

import json
import uuid

import pytest

from gateway import protocol
from gateway.protocol import Join, Leave, Ping, ProtocolError, Say, parse_client_text
from voxroom.errors import ErrorCode, VoxroomError


def parse(obj: object, max_text_chars: int = 500) -> protocol.ClientMessage:
    return parse_client_text(obj if isinstance(obj, str) else json.dumps(obj), max_text_chars=max_text_chars)


def refusal(obj: object, **kwargs: int) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse(obj, **kwargs)
    return info.value


def test_valid_messages_parse_to_typed_requests() -> None:
    assert parse({"type": "ping", "id": "p"}) == Ping(id="p")
    assert parse({"type": "join", "room": "lobby"}) == Join(room="lobby")
    assert parse({"type": "leave", "room": "lobby", "id": "7"}) == Leave(room="lobby", id="7")
    assert parse({"type": "say", "room": "r", "text": "你好", "voice": "stock:jf_alpha", "lang": "zh"}) == Say(
        room="r", text="你好", voice="stock:jf_alpha", lang="zh"
    )
    assert parse({"type": "say", "room": "r", "text": "hi"}).lang == "auto"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("{not json", "Malformed JSON"),
        ("[1, 2]", "JSON object"),
        ('"just a string"', "JSON object"),
        ({"room": "r"}, "'type' is missing"),
        ({"type": 5}, "'type' is missing"),
        ({"type": "dance"}, "Unknown message type"),
        ({"type": "join"}, "'room'"),
        ({"type": "join", "room": ""}, "'room'"),
        ({"type": "join", "room": 12}, "'room'"),
        ({"type": "join", "room": "x" * 200}, "at most"),
        ({"type": "join", "room": "a\nb"}, "printable"),
        ({"type": "leave"}, "'room'"),
        ({"type": "say", "room": "r"}, "'text' must be a string"),
        ({"type": "say", "room": "r", "text": 3}, "'text' must be a string"),
        ({"type": "say", "room": "r", "text": "   "}, "empty"),
        ({"type": "say", "room": "r", "text": "hi", "voice": 9}, "'voice'"),
        ({"type": "say", "room": "r", "text": "hi", "voice": ""}, "'voice'"),
        ({"type": "say", "room": "r", "text": "hi", "lang": "fr"}, "'lang'"),
        ({"type": "ping", "id": 42}, "'id'"),
        ({"type": "ping", "id": "x" * 500}, "'id'"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(payload: object, fragment: str) -> None:
    error = refusal(payload)
    assert error.code is ErrorCode.BAD_REQUEST
    assert fragment in error.message


def test_text_over_the_limit_is_refused() -> None:
    assert parse({"type": "say", "room": "r", "text": "a" * 20}, max_text_chars=20)
    error = refusal({"type": "say", "room": "r", "text": "a" * 21, "id": "q"}, max_text_chars=20)
    assert error.code is ErrorCode.BAD_REQUEST and "too long" in error.message
    assert error.request_id == "q"


def test_oversized_frame_is_refused_before_parsing() -> None:
    huge = json.dumps({"type": "say", "room": "r", "text": "字" * 8000})
    assert len(huge.encode()) > protocol.MAX_TEXT_FRAME_BYTES
    error = refusal(huge, max_text_chars=10**6)
    assert error.code is ErrorCode.BAD_REQUEST and "too large" in error.message


def test_binary_frame_from_a_client_is_a_bad_request() -> None:
    reply = protocol.error_message(protocol.binary_from_client())
    assert reply["type"] == "error" and reply["code"] == "bad_request"
    assert "Binary frames" in reply["message"]


def test_not_in_room_until_joined() -> None:
    state = protocol.ConnectionState()
    with pytest.raises(ProtocolError) as info:
        state.require_joined("lobby", "s1")
    assert info.value.code is ErrorCode.NOT_IN_ROOM and info.value.request_id == "s1"
    state.rooms.add("lobby")
    state.require_joined("lobby", None)


def test_error_reply_echoes_the_request_id_and_retry_hint() -> None:
    error = refusal({"type": "nope", "id": "abc"})
    assert protocol.error_message(error) == {
        "type": "error",
        "code": "bad_request",
        "message": error.message,
        "id": "abc",
    }
    limited = VoxroomError(ErrorCode.RATE_LIMITED, retry_after_s=1.23456, details={"category": "x"})
    reply = protocol.error_message(limited, "r9")
    assert reply["retry_after_s"] == 1.235 and reply["id"] == "r9" and reply["category"] == "x"


def test_every_error_code_has_a_plain_message() -> None:
    for code in ErrorCode:
        assert VoxroomError(code).message.endswith(".")


def test_audio_frame_header_round_trip() -> None:
    utterance = uuid.uuid4()
    frame = protocol.pack_frame(utterance, 70000, b"\xfc\x01opus")
    assert frame[:16] == utterance.bytes
    assert frame[16:20] == (70000).to_bytes(4, "big")
    assert protocol.unpack_frame(frame) == (utterance, 70000, b"\xfc\x01opus")
    with pytest.raises(ValueError):
        protocol.unpack_frame(b"short")


def test_server_messages_have_the_documented_fields() -> None:
    utterance = uuid.uuid4()
    start = protocol.speech_start(utterance, "r", "alice", "stock:jf_alpha", "hi")
    assert start == {
        "type": "speech_start",
        "utterance": str(utterance),
        "room": "r",
        "from": "alice",
        "voice": "stock:jf_alpha",
        "text": "hi",
        "codec": "opus",
        "sample_rate": 48000,
        "channels": 1,
        "frame_ms": 20,
    }
    assert protocol.speech_end(utterance, 50, 1000) == {
        "type": "speech_end",
        "utterance": str(utterance),
        "frames": 50,
        "duration_ms": 1000,
    }
    assert json.loads(protocol.encode(protocol.pong("1"))) == {"type": "pong", "id": "1"}
