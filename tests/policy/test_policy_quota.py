"""Daily quotas: exactly the limit is accepted, refusals cost nothing, the day rolls over."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from policy_helpers import ALICE, BOB, BOT, REDIS_URL, MakeService, say

from policy.clock import ManualClock
from policy.config import PolicyConfig, RateLimit
from policy.redis_store import RedisPolicyStore
from policy.service import PolicyService
from policy.voice_directory import StaticVoiceDirectory
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.identity import Account

UNLIMITED = RateLimit(burst=10_000, per_second=10_000)


async def test_the_50th_is_accepted_and_the_51st_refused(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    for n in range(1, 51):
        permit = await say(service, ALICE, text=f"line {n}")
        assert (permit.quota.used, permit.quota.limit) == (n, 50)
    assert permit.quota.resets_at == "2026-03-15T00:00:00Z"
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE)
    assert caught.value.code == ErrorCode.DAILY_LIMIT
    assert caught.value.retry_after_s == 12 * 3600
    assert "all 50 of today's messages" in caught.value.message
    assert (await service.quota_for("alice")).used == 50


async def test_refusals_cost_nothing(service: PolicyService) -> None:
    refusals = [
        say(service, ALICE),  # consent off
        say(service, ALICE, None, text="you are a doofus"),  # blocked
        say(service, ALICE, "bob"),  # bob's consent is off
    ]
    for attempt in refusals:
        with pytest.raises(VoxroomError):
            await attempt
    await service.set_consent("bob", True)
    with pytest.raises(VoxroomError):
        await say(service, ALICE, "bob")  # no grant
    assert (await service.quota_for("alice")).used == 0
    assert (await service.quota_for("bob")).used == 0


async def test_200_concurrent_decisions_accept_exactly_the_limit(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    results = await asyncio.gather(
        *(say(service, ALICE, connection=f"conn-{i % 7}") for i in range(200)), return_exceptions=True
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 50
    assert sorted(p.quota.used for p in accepted) == list(range(1, 51))
    assert all(isinstance(r, VoxroomError) and r.code == ErrorCode.DAILY_LIMIT for r in refused)
    assert (await service.quota_for("alice")).used == 50


async def test_concurrent_senders_share_the_owners_quota_exactly(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    bots = [Account(f"bot-{i}", kind="bot") for i in range(4)]
    for bot in bots:
        await service.add_grant("alice", bot.id, None)
    results = await asyncio.gather(
        *(say(service, bots[i % 4], "alice") for i in range(200)), return_exceptions=True
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    assert len(accepted) == 50
    assert (await service.quota_for("alice")).used == 50
    # Each bot's own count holds only what was accepted for it.
    sent = [(await service.quota_for(bot.id)).used for bot in bots]
    assert sum(sent) == 50


async def test_the_owners_quota_binds_a_granted_sender(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bob", None)
    for _ in range(30):
        await say(service, ALICE)
    for n in range(20):
        permit = await say(service, BOB, "alice")
        # The quota reported is the one closer to running out: alice's voice.
        assert (permit.quota.used, permit.quota.limit) == (31 + n, 50)
    with pytest.raises(VoxroomError) as caught:
        await say(service, BOB, "alice")
    assert caught.value.code == ErrorCode.DAILY_LIMIT
    assert "alice's voice has been used 50 times today" in caught.value.message
    assert (await say(service, BOB, None)).quota.used == 21  # a stock voice still works for bob


async def test_the_day_rolls_over_at_midnight(service: PolicyService, clock: ManualClock) -> None:
    await service.set_consent("alice", True)
    for _ in range(50):
        permit = await say(service, ALICE)
    clock.advance(12 * 3600 - 1)  # 23:59:59
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE)
    assert caught.value.retry_after_s == 1
    clock.advance(1)
    fresh = await say(service, ALICE)
    assert (fresh.quota.used, fresh.quota.resets_at) == (1, "2026-03-16T00:00:00Z")
    # Refunding yesterday's utterance touches yesterday's count only.
    await service.refund(permit)
    assert (await service.quota_for("alice")).used == 1


async def test_the_day_boundary_follows_the_configured_zone(
    make_service: MakeService, clock: ManualClock
) -> None:
    service = make_service(timezone="Asia/Shanghai")  # 12:00 UTC is 20:00 in Shanghai
    await service.set_consent("alice", True)
    permit = await say(service, ALICE)
    assert permit.quota.resets_at == "2026-03-14T16:00:00Z"
    clock.advance(4 * 3600)
    assert (await say(service, ALICE)).quota.used == 1


async def test_a_refund_gives_back_one_charge_once(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bot-7", None)
    permits = [await say(service, BOT, "alice") for _ in range(50)]
    await service.refund(permits[-1])
    await service.refund(permits[-1])  # the same refund twice counts once
    assert (await service.quota_for("alice")).used == 49
    assert (await service.quota_for("bot-7")).used == 49
    await say(service, BOT, "alice")
    with pytest.raises(VoxroomError):
        await say(service, BOT, "alice")


async def test_per_account_limits_override_the_default(make_service: MakeService) -> None:
    service = make_service(daily_limit=5, per_account_limits={"bot-7": 2})
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bot-7", None)
    assert (await say(service, BOT, "alice")).quota.limit == 2
    await say(service, BOT, "alice")
    with pytest.raises(VoxroomError) as caught:
        await say(service, BOT, "alice")
    assert "all 2 of today's messages" in caught.value.message
    assert (await service.quota_for("alice")).limit == 5


async def test_a_zero_limit_refuses_everything(make_service: MakeService) -> None:
    service = make_service(daily_limit=0)
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE, None)
    assert caught.value.code == ErrorCode.DAILY_LIMIT


@pytest.mark.redis
async def test_two_gateways_on_one_redis_share_the_limit_exactly(clock: ManualClock, tmp_path: Path) -> None:
    prefix = f"voxroom-test:{uuid.uuid4().hex}:"
    # Two gateways: each with its own client and connection pool, the same keys.
    stores = [RedisPolicyStore.from_url(REDIS_URL, prefix) for _ in range(2)]
    config = PolicyConfig(clock=clock, account_rate=UNLIMITED, connection_rate=UNLIMITED,
                          audit_path=tmp_path / "audit.jsonl")
    first, second = (PolicyService(config, s, StaticVoiceDirectory({"alice"})) for s in stores)
    try:
        await first.set_consent("alice", True)
        results = await asyncio.gather(
            *(say(first if i % 2 else second, ALICE, connection=f"conn-{i % 2}") for i in range(200)),
            return_exceptions=True,
        )
        assert sum(not isinstance(r, BaseException) for r in results) == 50
        assert (await second.quota_for("alice")).used == 50
    finally:
        keys = [key async for key in stores[0].redis.scan_iter(match=prefix + "*")]
        await stores[0].redis.delete(*keys)
        for store in stores:
            await store.close()
