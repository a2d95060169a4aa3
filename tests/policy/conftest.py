"""Fixtures for the policy tests: every store-backed test runs on memory and on the real Redis."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from policy_helpers import REDIS_URL, MakeService

from policy.clock import ManualClock
from policy.config import PolicyConfig, RateLimit
from policy.memory_store import MemoryPolicyStore
from policy.redis_store import RedisPolicyStore
from policy.service import PolicyService
from policy.store import PolicyStore
from policy.voice_directory import StaticVoiceDirectory

BLOCKLIST = Path(__file__).parents[1] / "data" / "blocklist_test.txt"
# Generous enough that only the rate-limit tests ever meet a limit.
UNLIMITED_RATE = RateLimit(burst=10_000, per_second=10_000)
START = dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PolicyStore]:
    if request.param == "memory":
        yield MemoryPolicyStore()
        return
    prefix = f"voxroom-test:{uuid.uuid4().hex}:"
    redis_store = RedisPolicyStore.from_url(REDIS_URL, prefix)
    try:
        await redis_store.redis.ping()
    except Exception as exc:
        pytest.fail(f"these tests need Redis on {REDIS_URL} (deselect them with -m 'not redis'): {exc}")
    yield redis_store
    keys = [key async for key in redis_store.redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis_store.redis.delete(*keys)
    await redis_store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def voices() -> StaticVoiceDirectory:
    return StaticVoiceDirectory({"alice", "bob", "carol"})


@pytest.fixture
def make_service(
    store: PolicyStore, clock: ManualClock, voices: StaticVoiceDirectory, tmp_path: Path
) -> MakeService:
    def make(**overrides: Any) -> PolicyService:
        config = PolicyConfig(
            clock=clock,
            account_rate=UNLIMITED_RATE,
            connection_rate=UNLIMITED_RATE,
            blocklist_paths=(BLOCKLIST,),
            audit_path=tmp_path / "audit.jsonl",
            audit_key=b"test audit key",
        )
        return PolicyService(dataclasses.replace(config, **overrides), store, voices)

    return make


@pytest.fixture
def service(make_service: MakeService) -> PolicyService:
    return make_service()
