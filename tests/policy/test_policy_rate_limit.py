"""Rate limits: a burst is fine, a script is slowed, per account and per connection."""

from __future__ import annotations

import pytest
from policy_helpers import ALICE, MakeService, say

from policy.clock import ManualClock
from policy.config import RateLimit
from voxroom.errors import ErrorCode, VoxroomError


async def test_a_chatty_person_is_not_limited(make_service: MakeService, clock: ManualClock) -> None:
    service = make_service(
        account_rate=RateLimit(20, 1.0), connection_rate=RateLimit(10, 0.5), daily_limit=1000
    )
    # A line every two seconds for two minutes, after a quick burst of five.
    for _ in range(5):
        await say(service, ALICE, None)
    for _ in range(60):
        clock.advance(2.0)
        await say(service, ALICE, None)


async def test_a_script_is_limited_with_a_retry_time(make_service: MakeService, clock: ManualClock) -> None:
    service = make_service(account_rate=RateLimit(20, 1.0), connection_rate=RateLimit(10, 0.5))
    for _ in range(10):
        await say(service, ALICE, None)
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE, None)
    assert caught.value.code == ErrorCode.RATE_LIMITED
    assert caught.value.retry_after_s == 2.0  # the connection bucket refills one token in 2 s
    assert "wait 2 seconds" in caught.value.message
    clock.advance(1.9)
    with pytest.raises(VoxroomError):
        await say(service, ALICE, None)
    clock.advance(0.1)
    await say(service, ALICE, None)


async def test_the_account_limit_spans_connections(make_service: MakeService, clock: ManualClock) -> None:
    service = make_service(account_rate=RateLimit(4, 0.25), connection_rate=RateLimit(3, 1.0))
    for n in range(4):
        await say(service, ALICE, None, connection=f"conn-{n}")
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE, None, connection="conn-new")
    assert caught.value.code == ErrorCode.RATE_LIMITED
    assert caught.value.retry_after_s == 4.0


async def test_a_refused_request_takes_no_token_from_the_other_bucket(
    make_service: MakeService, clock: ManualClock
) -> None:
    service = make_service(account_rate=RateLimit(3, 0.1), connection_rate=RateLimit(1, 0.1))
    await say(service, ALICE, None, connection="a")
    for _ in range(5):  # conn "a" is empty: these must not drain the account bucket
        with pytest.raises(VoxroomError):
            await say(service, ALICE, None, connection="a")
    await say(service, ALICE, None, connection="b")
    await say(service, ALICE, None, connection="c")
    with pytest.raises(VoxroomError):
        await say(service, ALICE, None, connection="d")


async def test_rate_limited_requests_cost_no_quota(make_service: MakeService) -> None:
    service = make_service(connection_rate=RateLimit(2, 0.01))
    await say(service, ALICE, None)
    await say(service, ALICE, None)
    for _ in range(3):
        with pytest.raises(VoxroomError):
            await say(service, ALICE, None)
    assert (await service.quota_for("alice")).used == 2
