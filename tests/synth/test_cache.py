"""The phrase cache, in memory and on the real Redis: hits, versions, deletion, bounds."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from synth.cache import MemoryPhraseCache, PhraseCache, PhraseKey, RedisPhraseCache, pack_packets, unpack_packets
from voxroom.metrics import Metrics

REDIS_URL = "redis://127.0.0.1:6379/0"


def key(text: str, voice: str = "alice", version: int = 1) -> PhraseKey:
    return PhraseKey(voice, version, text, "zh", "kokoro", "m1")


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[PhraseCache]:
    if request.param == "memory":
        store: PhraseCache = MemoryPhraseCache(Metrics(), max_bytes=10_000)
        yield store
        await store.close()
        return
    async with fresh_redis_cache() as redis_cache:
        yield redis_cache


@contextlib.asynccontextmanager
async def fresh_redis_cache() -> AsyncIterator[RedisPhraseCache]:
    """A cache on the real Redis under a prefix of its own, its keys deleted afterwards."""
    prefix = f"voxroom-test-{uuid.uuid4().hex[:8]}:"
    store = RedisPhraseCache(REDIS_URL, prefix, Metrics())
    try:
        yield store
    finally:
        keys = [k async for k in store.redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await store.redis.delete(*keys)
        await store.close()


def test_packets_round_trip_through_the_blob_format() -> None:
    packets = [b"\x01", b"", b"x" * 300]
    assert unpack_packets(pack_packets(packets)) == packets


async def test_hit_returns_identical_packets(cache: PhraseCache) -> None:
    packets = [bytes([i]) * 40 for i in range(10)]
    assert await cache.get(key("哈哈")) is None
    await cache.put(key("哈哈"), packets)
    assert await cache.get(key("哈哈")) == packets
    assert await cache.get(key("哈哈哈")) is None


async def test_new_voice_version_misses_and_deletion_forgets_the_voice(cache: PhraseCache) -> None:
    await cache.put(key("ok"), [b"a" * 10])
    await cache.put(key("lol"), [b"b" * 10])
    await cache.put(key("ok", voice="bob"), [b"c" * 10])
    assert await cache.get(key("ok", version=2)) is None  # re-enrolled voice: old audio never served
    assert await cache.forget_voice("alice", below_version=2) == 2
    assert await cache.get(key("ok")) is None and await cache.get(key("lol")) is None
    assert await cache.get(key("ok", voice="bob")) == [b"c" * 10]


async def test_audio_of_a_forgotten_version_that_arrives_late_is_not_kept(cache: PhraseCache) -> None:
    """An utterance rendered while its voice was deleted ends with a put: it must not bring the audio back."""
    await cache.put(key("ok", version=5), [b"old" * 5])
    await cache.put(key("lol", version=7), [b"new" * 5])  # the re-enrolled voice's, kept
    assert await cache.forget_voice("alice", below_version=7) == 1
    await cache.put(key("ok", version=5), [b"old" * 5])  # the late put
    await cache.put(key("ok", version=6), [b"old" * 5])
    assert await cache.get(key("ok", version=5)) is None and await cache.get(key("ok", version=6)) is None
    assert await cache.get(key("lol", version=7)) == [b"new" * 5]
    await cache.put(key("ok", version=7), [b"new" * 5])  # the current version is cached as before
    assert await cache.get(key("ok", version=7)) == [b"new" * 5]
    # A lower bound later (say, a delete racing a re-enrollment) never lowers the marker.
    await cache.forget_voice("alice", below_version=3)
    await cache.put(key("ok", version=6), [b"old" * 5])
    assert await cache.get(key("ok", version=6)) is None
    # Other voices are untouched by alice's marker.
    await cache.put(key("ok", voice="bob", version=1), [b"bob"])
    assert await cache.get(key("ok", voice="bob", version=1)) == [b"bob"]
    assert await cache.forget_voice("alice", below_version=8) == 2  # both of version 7
    assert await cache.get(key("lol", version=7)) is None


async def test_memory_cache_evicts_least_recent_to_stay_in_bounds() -> None:
    metrics = Metrics()
    cache = MemoryPhraseCache(metrics, max_bytes=1000)
    for i in range(3):
        await cache.put(key(f"m{i}"), [b"z" * 298])  # 300 bytes each with framing
    assert await cache.get(key("m0")) is not None  # m0 is now the most recent
    await cache.put(key("m3"), [b"z" * 298])  # over 1000 bytes: the least recent (m1) goes
    assert cache.bytes == 900
    assert await cache.get(key("m1")) is None
    for name in ("m0", "m2", "m3"):
        assert await cache.get(key(name)) is not None
    assert metrics.cache_evictions._value.get() == 1


@pytest.fixture
async def redis_cache() -> AsyncIterator[RedisPhraseCache]:
    async with fresh_redis_cache() as store:
        yield store


async def test_a_voices_keys_share_one_cluster_slot(redis_cache: RedisPhraseCache) -> None:
    """The put script touches a voice's entry, index and marker at once: on Redis Cluster they must share a slot."""
    from redis.crc import key_slot

    for text in ("ok", "lol", "see you tomorrow"):
        await redis_cache.put(key(text), [b"a" * 10])
    await redis_cache.forget_voice("alice", below_version=1)  # raises the marker, deletes nothing
    names = [k async for k in redis_cache.redis.scan_iter(match=f"{redis_cache.prefix}*")]
    assert len(names) == 3 + 2  # three entries, the index, the forgotten marker
    assert len({key_slot(name) for name in names}) == 1


async def test_deletion_also_erases_entries_named_before_the_hash_tags(redis_cache: RedisPhraseCache) -> None:
    """Entries an earlier release cached (untagged names) live out their TTL after an upgrade: a delete takes them."""
    client, prefix = redis_cache.redis, redis_cache.prefix
    old_entries = [f"{prefix}phrase:alice:{version}:{key('ok').digest()}" for version in (1, 2)]
    for name in old_entries:
        await client.set(name, pack_packets([b"old"]), ex=60)
        await client.sadd(f"{prefix}phrase-index:alice", name)
    await redis_cache.put(key("lol"), [b"new"])
    assert await redis_cache.forget_voice("alice", below_version=2) == 2  # the tagged one and the old version 1
    assert await client.exists(old_entries[0]) == 0 and await client.exists(old_entries[1]) == 1
    assert await redis_cache.get(key("lol")) is None
