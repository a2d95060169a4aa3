"""Peers that never connect are closed and leave the room; shutting the server down closes every peer.

In-process app (the real composition root, with the fake engine so it starts at once)
and aiortc clients on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from aiortc import RTCConfiguration, RTCPeerConnection

import gateway.rtc
from gateway.auth import TokenAuthority
from gateway.rtc import RTC_PEERS_KEY
from tests.rtc.listener import RtcListener, post_offer
from voxroom.app import build_context, create_app
from voxroom.client import VoxroomClient
from voxroom.settings import Settings

SECRET = "rtc-cleanup-test-secret-of-some-length"


@pytest.fixture
async def app_server(tmp_path: Path) -> AsyncIterator[TestServer]:
    settings = Settings(secret=SECRET, data_dir=tmp_path, engine="fake", default_voice="stock:buzz")
    server = TestServer(create_app(build_context(settings)), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def token(account: str) -> str:
    return TokenAuthority(SECRET).mint(account)


async def test_a_peer_that_never_connects_is_closed(app_server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.rtc, "CONNECT_TIMEOUT_S", 1.0)
    http = str(app_server.make_url("")).rstrip("/")
    watcher = await VoxroomClient.connect(http.replace("http", "ws") + "/v1/ws", token("watcher"))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await watcher.join("cleanup")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        status, _ = await post_offer(
            http, token("ghost"), {"room": "cleanup", "sdp": pc.localDescription.sdp, "type": "offer"}
        )
        assert status == 200  # answered, but the client never applies the answer
        assert (await watcher.next_event("member_joined"))["account"] == "ghost"
        assert len(app_server.app[RTC_PEERS_KEY]) == 1
        assert (await watcher.next_event("member_left", timeout=10))["account"] == "ghost"
        assert len(app_server.app[RTC_PEERS_KEY]) == 0
    finally:
        await pc.close()
        await watcher.close()


async def test_shutdown_closes_every_peer(app_server: TestServer) -> None:
    http = str(app_server.make_url("")).rstrip("/")
    listener = RtcListener(with_channel=False)
    try:
        await listener.connect(http, token("late"), "cleanup")
        await listener.wait_connected()
        peers = app_server.app[RTC_PEERS_KEY]
        assert len(peers) == 1
        await app_server.close()
        assert len(peers) == 0
        await asyncio.wait_for(listener.track_ended.wait(), 15)
    finally:
        await listener.close()
