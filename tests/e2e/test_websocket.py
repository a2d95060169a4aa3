"""End to end over real sockets against a real `voxroom serve`: rooms, speech, errors."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets

from tests.audio_checks import decode_opus, envelope_modulation, voiced_ratio
from tests.conftest import ServerProcess
from voxroom.client import RequestRefused, VoxroomClient


async def connect(server: ServerProcess, user: str, **claims: object) -> VoxroomClient:
    return await VoxroomClient.connect(server.ws_url, server.token(user, **claims))


async def expect_close(server: ServerProcess, url: str, **kwargs: object) -> int | None:
    async with websockets.connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        return ws.close_code


async def test_bad_tokens_are_closed_with_4401(server: ServerProcess) -> None:
    assert await expect_close(server, server.ws_url) == 4401
    assert await expect_close(server, server.ws_url + "?token=garbage") == 4401
    expired = server.token("alice", ttl_s=60, now=time.time() - 3600)
    assert await expect_close(server, f"{server.ws_url}?token={expired}") == 4401
    forged = ServerProcess.__new__(ServerProcess)  # only its minting: another deployment's secret
    from gateway.auth import TokenAuthority

    forged_token = TokenAuthority("some-other-deployment-secret-of-length").mint("alice")
    assert await expect_close(server, f"{server.ws_url}?token={forged_token}") == 4401
    # The Authorization header works as well as the query string.
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong", "id": "p"}
    del forged


async def test_membership_events_and_room_errors(server: ServerProcess) -> None:
    alice = await connect(server, "alice")
    bob = await connect(server, "bob", rooms=["members-only"])
    try:
        joined = await alice.join("members-only")
        assert joined["members"] == [{"account": "alice", "kind": "user"}]
        joined = await bob.join("members-only")
        assert {m["account"] for m in joined["members"]} == {"alice", "bob"}
        assert (await alice.next_event("member_joined"))["account"] == "bob"

        with pytest.raises(RequestRefused) as refused:
            await bob.join("elsewhere")  # not in the token's rooms
        assert refused.value.code == "forbidden"
        with pytest.raises(RequestRefused) as refused:
            await bob.say("elsewhere", "hello")
        assert refused.value.code == "not_in_room"
        with pytest.raises(RequestRefused) as refused:
            await bob.leave("elsewhere")
        assert refused.value.code == "not_in_room"
        with pytest.raises(RequestRefused) as refused:
            await bob.say("members-only", "hi", voice="stock:nobody")
        assert refused.value.code == "bad_request" and "stock:" in refused.value.error["message"]
        with pytest.raises(RequestRefused) as refused:
            await bob.say("members-only", "hi", voice="carol")  # carol never enrolled
        assert refused.value.code == "no_voice"

        # A binary frame from a client is refused, and the connection stays usable.
        await bob.ws.send(b"\x00\x01")
        error = await bob.next_event("error")
        assert error["code"] == "bad_request"
        assert (await bob.ping())["type"] == "pong"

        assert (await bob.leave("members-only"))["type"] == "left"
        assert (await alice.next_event("member_left"))["account"] == "bob"
    finally:
        await alice.close()
        await bob.close()


async def test_malformed_frames_get_bad_request_and_keep_the_connection(server: ServerProcess) -> None:
    async with websockets.connect(f"{server.ws_url}?token={server.token('mallory')}") as ws:
        for frame in (
            "{oops",
            json.dumps({"type": "shout"}),
            json.dumps({"type": "say", "room": "r", "text": "x" * 100_000}),
        ):
            await ws.send(frame)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] == "error" and reply["code"] == "bad_request", reply
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"


@pytest.mark.parametrize(
    ("text", "seconds_per_char"),
    [
        ("你好，今天天气很好。我们一起去公园散步吧！", (0.12, 0.5)),
        ("Hello everyone, thanks for joining the call today.", (0.03, 0.15)),
    ],
)
async def test_say_is_heard_by_every_member_as_speech(
    server: ServerProcess, text: str, seconds_per_char: tuple[float, float]
) -> None:
    alice = await connect(server, "alice")
    bob = await connect(server, "bob")
    try:
        await alice.join("cafe")
        await bob.join("cafe")
        accepted = await alice.say("cafe", text)
        assert accepted["type"] == "accepted" and accepted["voice"].startswith("stock:")
        heard = [await listener.utterance(accepted["utterance"]) for listener in (alice, bob)]
        for utterance in heard:
            assert utterance.start is not None and utterance.start["text"] == text
            assert utterance.start["from"] == "alice" and utterance.start["codec"] == "opus"
            assert utterance.end is not None and utterance.end["type"] == "speech_end", utterance.end
            assert utterance.sequences == list(range(len(utterance.packets)))
            assert utterance.end["frames"] == len(utterance.packets)
        # The same bytes went to both listeners.
        assert heard[0].packets == heard[1].packets
        audio = decode_opus(heard[1].packets)
        seconds = len(audio) / 48000
        low, high = seconds_per_char
        chars = len(text.replace(" ", "")) if any(ord(c) > 0x3000 for c in text) else len(text)
        assert low * chars <= seconds <= high * chars, f"{seconds:.2f} s for {chars} characters"
        assert 0.3 < voiced_ratio(audio) < 0.98, "not speech-like (silence, noise or a tone)"
        assert envelope_modulation(audio) > 0.4, "no syllable rhythm in the envelope"
    finally:
        await alice.close()
        await bob.close()


def test_health_metrics_and_stock_voices(server: ServerProcess) -> None:
    with urllib.request.urlopen(f"{server.http}/healthz") as response:
        assert json.load(response)["status"] == "ok"
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        body = response.read().decode()
    assert "voxroom_connections" in body and "voxroom_time_to_first_audio_seconds" in body
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{server.http}/v1/voices/stock")
    assert denied.value.code == 401
    request = urllib.request.Request(
        f"{server.http}/v1/voices/stock", headers={"Authorization": f"Bearer {server.token('alice')}"}
    )
    with urllib.request.urlopen(request) as response:
        voices = json.load(response)
    assert {"name": "stock:jf_alpha", "languages": ["zh", "en", "ja"]} in voices
