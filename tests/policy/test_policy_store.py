"""The store contract both implementations keep: all-or-nothing charges and tokens, expiry, one refund."""

from __future__ import annotations

import datetime as dt

from policy.config import RateLimit
from policy.redis_store import RedisPolicyStore
from policy.store import Grant, PolicyStore

NOW = 1_773_489_600.0  # 2026-03-14T12:00:00Z


async def test_a_charge_changes_every_counter_or_none(store: PolicyStore) -> None:
    first = await store.charge([("q:a", 2), ("q:b", 1)], ttl_s=60, now=NOW)
    assert first.accepted and first.counts == (1, 1)
    refused = await store.charge([("q:a", 2), ("q:b", 1)], ttl_s=60, now=NOW)
    assert (refused.accepted, refused.full, refused.counts) == (False, 1, (1, 1))
    assert await store.counts(["q:a", "q:b", "q:never"], NOW) == [1, 1, 0]


async def test_counters_expire_after_their_ttl(store: PolicyStore) -> None:
    await store.charge([("q:a", 5)], ttl_s=60, now=NOW)
    await store.charge([("q:a", 5)], ttl_s=60, now=NOW + 30)  # a later charge keeps the first expiry
    if isinstance(store, RedisPolicyStore):
        ttl = await store.redis.ttl(store.key("q:a"))
        assert 0 < ttl <= 60
    else:
        assert await store.counts(["q:a"], NOW + 59) == [2]
        assert await store.counts(["q:a"], NOW + 60) == [0]


async def test_a_refund_happens_once_and_never_goes_below_zero(store: PolicyStore) -> None:
    await store.charge([("q:a", 5), ("q:b", 5)], ttl_s=60, now=NOW)
    assert await store.refund(["q:a", "q:b", "q:c"], "refund:1", ttl_s=60, now=NOW) is True
    assert await store.refund(["q:a", "q:b", "q:c"], "refund:1", ttl_s=60, now=NOW) is False
    assert await store.counts(["q:a", "q:b", "q:c"], NOW) == [0, 0, 0]


async def test_tokens_are_taken_from_every_bucket_or_none(store: PolicyStore) -> None:
    roomy, tight = RateLimit(burst=5, per_second=1.0), RateLimit(burst=1, per_second=0.5)
    buckets = [("r:roomy", roomy), ("r:tight", tight)]
    assert await store.take_tokens(buckets, NOW) == 0.0
    assert await store.take_tokens(buckets, NOW) == 2.0  # tight is empty; one token in 2 s
    assert await store.take_tokens([("r:roomy", roomy)], NOW) == 0.0  # roomy lost only one token
    assert await store.take_tokens([("r:roomy", roomy)], NOW) == 0.0
    assert await store.take_tokens([("r:roomy", roomy)], NOW) == 0.0
    assert await store.take_tokens([("r:roomy", roomy)], NOW) == 0.0
    assert await store.take_tokens([("r:roomy", roomy)], NOW) == 1.0
    assert await store.take_tokens(buckets, NOW + 2.0) == 0.0
    # A clock stepping back neither adds tokens nor breaks the bucket.
    assert await store.take_tokens([("r:tight", tight)], NOW + 1.0) == 2.0


async def test_grants_round_trip_exactly(store: PolicyStore) -> None:
    created = dt.datetime(2026, 3, 14, 12, 0, 0, 123456, tzinfo=dt.UTC)
    grant = Grant("alice", "bot-7", "g1", created, created + dt.timedelta(days=1))
    await store.put_grant(grant)
    assert await store.get_grant("alice", "bot-7") == grant
    assert await store.get_grant("alice", "bot-8") is None
    assert await store.list_grants("alice") == [grant]
    assert await store.delete_grant("alice", "bot-7") is True
    assert await store.list_grants("alice") == []


async def test_voice_access_reads_consent_and_grant_together(store: PolicyStore) -> None:
    created = dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC)
    grant = Grant("alice", "bot-7", "g1", created)
    assert await store.voice_access("alice", "bot-7") == (False, None)
    await store.put_grant(grant)
    await store.set_consent("alice", True)
    assert await store.voice_access("alice", "bot-7") == (True, grant)
    assert await store.voice_access("alice", None) == (True, None)
    assert await store.voice_access("alice", "bot-8") == (True, None)
    await store.forget_voice("alice")
    assert await store.voice_access("alice", "bot-7") == (False, None)
