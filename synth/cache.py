"""Phrase cache: the Opus packets of short, frequent messages, so "哈哈" or "ok" is heard at once.

Keyed by (voice id and version, normalised text and language, engine and model
version): a re-enrolled voice has a new version, so its old entries are never hit;
deleting a voice removes its entries explicitly. Packets are stored as encoded (and
watermarked), so a cached reply is byte-identical to the first rendering.

Two implementations behind one interface: an in-memory LRU bounded by bytes (the
embedded default) and Redis (shared by every gateway), each entry with a TTL.

Forgetting a voice leaves a marker for a while: an utterance in that voice already being
rendered when its owner deleted it ends with a `put`, and without the marker its audio would
be stored again after the purge (a deleted voice must leave no audio behind).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import struct
import time
from typing import Protocol

from voxroom.metrics import Metrics

log = logging.getLogger(__name__)

# Only short messages are cached: they are the ones people repeat.
MAX_CACHED_TEXT_CHARS = 48

# How long a forgotten voice's marker refuses late puts of its old versions: far longer than any utterance
# takes to render (minutes at most).
FORGOTTEN_MARKER_S = 3600


@dataclasses.dataclass(frozen=True)
class PhraseKey:
    voice_id: str
    voice_version: int
    text: str  # normalised, clauses joined
    lang: str
    engine: str
    model_version: str
    watermarked: bool = True  # audio made while marking was off must never be served once it is on

    def digest(self) -> str:
        raw = "\x1f".join([self.text, self.lang, self.engine, self.model_version, str(self.watermarked)])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def pack_packets(packets: list[bytes]) -> bytes:
    return b"".join(struct.pack(">H", len(p)) + p for p in packets)


def unpack_packets(blob: bytes) -> list[bytes]:
    packets, offset = [], 0
    while offset < len(blob):
        (size,) = struct.unpack_from(">H", blob, offset)
        packets.append(blob[offset + 2 : offset + 2 + size])
        offset += 2 + size
    return packets


class PhraseCache(Protocol):
    async def get(self, key: PhraseKey) -> list[bytes] | None: ...

    async def put(self, key: PhraseKey, packets: list[bytes]) -> None: ...

    async def forget_voice(self, voice_id: str, below_version: int) -> int:
        """Remove every entry made in this voice's versions older than `below_version`, and refuse later puts
        of them (FORGOTTEN_MARKER_S); returns how many entries were removed."""
        ...

    async def close(self) -> None: ...


class MemoryPhraseCache:
    """LRU by bytes. Each entry is one packed blob, not a list of ~60-byte packets: as Python objects the
    packets would take about 1.7 times their payload, and the bound would not be what memory holds."""

    def __init__(self, metrics: Metrics, *, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.metrics = metrics
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[tuple[str, int, str], bytes] = collections.OrderedDict()
        self._sizes: dict[tuple[str, int, str], int] = {}
        self.bytes = 0
        self._forgotten: dict[str, tuple[int, float]] = {}  # voice id -> (versions below this are gone, until)

    @staticmethod
    def _key(key: PhraseKey) -> tuple[str, int, str]:
        return (key.voice_id, key.voice_version, key.digest())

    async def get(self, key: PhraseKey) -> list[bytes] | None:
        blob = self._entries.get(self._key(key))
        if blob is None:
            self.metrics.cache_misses.inc()
            return None
        self._entries.move_to_end(self._key(key))
        self.metrics.cache_hits.inc()
        return unpack_packets(blob)

    async def put(self, key: PhraseKey, packets: list[bytes]) -> None:
        blob = pack_packets(packets)
        size = len(blob)
        if size > self.max_bytes or self._is_forgotten(key):
            return
        k = self._key(key)
        if k in self._entries:
            self.bytes -= self._sizes[k]
        self._entries[k] = blob
        self._entries.move_to_end(k)
        self._sizes[k] = size
        self.bytes += size
        while self.bytes > self.max_bytes:
            old, _ = self._entries.popitem(last=False)
            self.bytes -= self._sizes.pop(old)
            self.metrics.cache_evictions.inc()
        self.metrics.cache_bytes.set(self.bytes)

    async def forget_voice(self, voice_id: str, below_version: int) -> int:
        now = time.monotonic()
        self._forgotten = {v: marker for v, marker in self._forgotten.items() if marker[1] > now}
        previous = self._forgotten.get(voice_id, (below_version, 0.0))[0]
        self._forgotten[voice_id] = (max(previous, below_version), now + FORGOTTEN_MARKER_S)
        doomed = [k for k in self._entries if k[0] == voice_id and k[1] < below_version]
        for k in doomed:
            del self._entries[k]
            self.bytes -= self._sizes.pop(k)
        self.metrics.cache_bytes.set(self.bytes)
        return len(doomed)

    def _is_forgotten(self, key: PhraseKey) -> bool:
        marker = self._forgotten.get(key.voice_id)
        return marker is not None and key.voice_version < marker[0] and marker[1] > time.monotonic()

    async def close(self) -> None:
        self._entries.clear()


# Store an entry unless its voice version was forgotten (KEYS: entry, the voice's index, its forgotten marker;
# ARGV: blob, TTL, version). One script, so a purge cannot run between the check and the write.
_PUT_UNLESS_FORGOTTEN = """
local forgotten = redis.call('GET', KEYS[3])
if forgotten and tonumber(ARGV[3]) < tonumber(forgotten) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# Raise a voice's forgotten marker (never lower it) and keep it FORGOTTEN_MARKER_S (KEYS: marker; ARGV: version,
# seconds).
_RAISE_FORGOTTEN = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisPhraseCache:
    """Entries as one blob per key with a TTL, plus a set per voice so deletion finds them all."""

    def __init__(self, redis_url: str, prefix: str, metrics: Metrics, *, ttl_s: int = 7 * 86400) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(redis_url)
        self._put_unless_forgotten = self.redis.register_script(_PUT_UNLESS_FORGOTTEN)  # sent once, then by hash
        self._raise_forgotten = self.redis.register_script(_RAISE_FORGOTTEN)
        self.prefix = prefix
        self.metrics = metrics
        self.ttl_s = ttl_s

    # A voice's entries, index and forgotten marker share the hash tag `{voice id}`, so that the put script, which
    # touches all three, and the purge also run on Redis Cluster (as policy.redis_store's keys do).
    def _entry(self, key: PhraseKey) -> str:
        return f"{self.prefix}phrase:{{{key.voice_id}}}:{key.voice_version}:{key.digest()}"

    def _index(self, voice_id: str) -> str:
        return f"{self.prefix}phrase-index:{{{voice_id}}}"

    def _forgotten(self, voice_id: str) -> str:
        return f"{self.prefix}phrase-forgotten:{{{voice_id}}}"

    def _untagged_index(self, voice_id: str) -> str:
        """The index's name before the keys had hash tags: its entries live out their TTL (a week) after an upgrade,
        and a voice deleted meanwhile must lose them too."""
        return f"{self.prefix}phrase-index:{voice_id}"

    async def get(self, key: PhraseKey) -> list[bytes] | None:
        blob = await self.redis.get(self._entry(key))
        if blob is None:
            self.metrics.cache_misses.inc()
            return None
        self.metrics.cache_hits.inc()
        assert isinstance(blob, bytes)  # the client does not decode responses
        return unpack_packets(blob)

    async def put(self, key: PhraseKey, packets: list[bytes]) -> None:
        keys = [self._entry(key), self._index(key.voice_id), self._forgotten(key.voice_id)]
        await self._put_unless_forgotten(keys=keys, args=[pack_packets(packets), self.ttl_s, key.voice_version])

    async def forget_voice(self, voice_id: str, below_version: int) -> int:
        # The marker first: a put that lands after it is refused, one that landed before is in the index below.
        await self._raise_forgotten(keys=[self._forgotten(voice_id)], args=[below_version, FORGOTTEN_MARKER_S])
        index = self._index(voice_id)
        entries = [e for e in await self.redis.smembers(index) if _entry_version(e) < below_version]
        if entries:
            await self.redis.delete(*entries)
            await self.redis.srem(index, *entries)
        return len(entries) + await self._forget_untagged(voice_id, below_version)

    async def _forget_untagged(self, voice_id: str, below_version: int) -> int:
        # Untagged entries need not share a slot: one key per command.
        index = self._untagged_index(voice_id)
        entries = [e for e in await self.redis.smembers(index) if _entry_version(e) < below_version]
        for entry in entries:
            await self.redis.delete(entry)
            await self.redis.srem(index, entry)
        return len(entries)

    async def close(self) -> None:
        await self.redis.aclose()


def _entry_version(entry: bytes | str) -> int:
    """The voice version in an entry's name (`...phrase:{{voice id}}:{version}:{digest}`, or untagged)."""
    name = entry.decode() if isinstance(entry, bytes) else entry
    return int(name.rsplit(":", 2)[1])


def create_phrase_cache(redis_url: str, prefix: str, metrics: Metrics, *, max_bytes: int) -> PhraseCache:
    if redis_url:
        return RedisPhraseCache(redis_url, prefix, metrics)
    return MemoryPhraseCache(metrics, max_bytes=max_bytes)
