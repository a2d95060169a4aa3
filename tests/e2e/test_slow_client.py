"""A listener that stops reading is dropped with 4008; the others hear everything, undelayed."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.request

import websockets

from tests.conftest import ServerProcess
from voxroom.client import VoxroomClient


def slow_drops(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        body = response.read().decode()
    match = re.search(r"^voxroom_slow_client_drops_total ([0-9.]+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_slow_listener_is_dropped_and_does_not_delay_others(tight_server: ServerProcess) -> None:
    server = tight_server
    drops_before = slow_drops(server)
    speaker = await VoxroomClient.connect(server.ws_url, server.token("speaker"))
    fast = await VoxroomClient.connect(server.ws_url, server.token("fast"))
    # The slow listener has a tiny receive buffer and stops reading after joining.
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    slow = await websockets.connect(
        f"{server.ws_url}?token={server.token('slow')}", sock=sock, max_queue=1, ping_interval=None
    )
    try:
        await speaker.join("busy")
        await fast.join("busy")
        await slow.send('{"type": "join", "room": "busy"}')
        text = "This is a long message that keeps the room busy for a good while, so the slow one falls behind."
        utterances = [(await speaker.say("busy", text))["utterance"] for _ in range(4)]

        for _ in range(600):  # wait (bounded) until the server reports the drop
            if slow_drops(server) > drops_before:
                break
            await asyncio.sleep(0.2)
        # The slow one reads again: the audio that was buffered, then the 4008 close.
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 30)
        except websockets.ConnectionClosed:
            pass
        assert slow.close_code == 4008

        for utterance_id in utterances:
            heard = await fast.utterance(utterance_id, timeout=180)
            assert heard.end is not None and heard.end["type"] == "speech_end"
            assert heard.sequences == list(range(heard.end["frames"]))
        assert slow_drops(server) == drops_before + 1  # only the slow one
        assert (await speaker.ping())["type"] == "pong" and (await fast.ping())["type"] == "pong"
    finally:
        await speaker.close()
        await fast.close()
        await slow.close()
