"""The demo page's endpoints on the real app (fake engine): names become tokens only in demo mode."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.auth import TokenAuthority
from voxroom.app import build_context, create_app
from voxroom.client import VoxroomClient
from voxroom.settings import Settings

SECRET = "demo-endpoint-test-secret-of-some-length"
StartServer = Callable[[bool], Awaitable[TestServer]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartServer]:
    servers: list[TestServer] = []

    async def make(demo: bool) -> TestServer:
        settings = Settings(secret=SECRET, data_dir=tmp_path, engine="fake", default_voice="stock:buzz")
        server = TestServer(create_app(build_context(dataclasses.replace(settings, demo=demo))), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


async def post(server: TestServer, path: str, body: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.post(server.make_url(path), data=body) as response:
        return response.status, await response.json()


async def get(server: TestServer, path: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.get(server.make_url(path)) as response:
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


async def test_demo_mode_mints_a_working_token_for_a_name(start: StartServer) -> None:
    server = await start(True)
    assert (await get(server, "/demo/config"))["demo"] is True
    status, body = await post(server, "/demo/token", '{"name": "  Mei  Lin "}')
    assert status == 200 and body["account"] == "Mei-Lin"
    account = TokenAuthority(SECRET).verify(str(body["token"]))
    assert account.id == "Mei-Lin" and account.kind == "user"
    ws_url = str(server.make_url("/v1/ws")).replace("http", "ws")
    async with await VoxroomClient.connect(ws_url, str(body["token"])) as client:
        joined = await client.join("lobby")
        assert joined["members"] == [{"account": "Mei-Lin", "kind": "user"}]
    status, body = await post(server, "/demo/token", '{"name": "小明"}')
    assert status == 200 and body["account"] == "小明"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"name": ""}', "Type a display name"),
        ('{"name": "a/b"}', "letters, digits"),
        ('{"name": "' + "x" * 33 + '"}', "1 to 32"),
        ('{"name": "ok", "kind": "bot"}', "exactly"),
        ("not json", "must be JSON"),
    ],
)
async def test_bad_names_are_refused_in_words(start: StartServer, body: str, says: str) -> None:
    server = await start(True)
    status, reply = await post(server, "/demo/token", body)
    assert status == 400
    assert says in reply["error"]["message"]  # type: ignore[index]


async def test_without_demo_mode_there_are_no_tokens_for_names(start: StartServer) -> None:
    server = await start(False)
    config = await get(server, "/demo/config")
    assert config["demo"] is False and config["max_text_chars"] == 500
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/demo/token"), data='{"name": "mallory"}') as response:
            assert response.status in (404, 405)
