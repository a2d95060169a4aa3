"""200 concurrent `say` over 20 connections of one account: exactly the daily limit is accepted,
in memory and on the real Redis, and a refusal costs nothing."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ServerProcess
from voxroom.client import RequestRefused, VoxroomClient

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = 50


@pytest.fixture(params=["memory", "redis"])
def quota_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "VOXROOM_ENGINE": "fake",
        "VOXROOM_DAILY_LIMIT": str(LIMIT),
        "VOXROOM_RATE_ACCOUNT": "10000,10000",  # this test is about the quota, not the rate limit
        "VOXROOM_RATE_CONNECTION": "10000,10000",
        "VOXROOM_MAX_ACTIVE": "1000",
        "VOXROOM_MAX_FIRST_AUDIO": "0",  # nor about render capacity: 200 messages at once would be overloaded
    }
    prefix = f"voxroom-test-{uuid.uuid4().hex[:8]}:"
    if request.param == "redis":
        env |= {"VOXROOM_REDIS_URL": REDIS_URL, "VOXROOM_REDIS_PREFIX": prefix}
    proc = ServerProcess(tmp_path_factory.mktemp(f"quota-{request.param}"), env=env)
    yield proc
    proc.stop()
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


async def test_exactly_the_daily_limit_is_accepted_under_concurrency(quota_server: ServerProcess) -> None:
    token = quota_server.token("busy-bee")
    clients = [await VoxroomClient.connect(quota_server.ws_url, token) for _ in range(20)]
    try:
        await asyncio.gather(*(c.join("hive") for c in clients))

        async def say(client: VoxroomClient, n: int) -> str:
            try:
                await client.say("hive", f"message number {n}")
                return "accepted"
            except RequestRefused as refused:
                return str(refused.code)

        outcomes = await asyncio.gather(*(say(clients[i % 20], i) for i in range(200)))
        counts = collections.Counter(outcomes)
        assert counts == {"accepted": LIMIT, "daily_limit": 200 - LIMIT}, counts
        # The 51st of the day is refused with a time to wait until the reset.
        with pytest.raises(RequestRefused) as refused:
            await clients[0].say("hive", "one more")
        assert refused.value.code == "daily_limit" and refused.value.error["retry_after_s"] > 0
    finally:
        for client in clients:
            await client.close()
