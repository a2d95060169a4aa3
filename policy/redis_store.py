"""Policy state on Redis, shared by every gateway process.

Quota charges, refunds and rate-limit tokens each run as one Lua script, so they
are atomic however many gateways decide at once. Keys that a script touches
together share a hash tag (`{day}` for quotas, `{account}` for rate buckets,
`{owner}` for a voice's consent and grants) so the scripts also run on Redis Cluster.
Expiries are relative TTLs computed from the policy clock, never absolute times.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from policy.audit import AuditRecord
from policy.config import RateLimit
from policy.store import Charge, Grant, PolicyStoreError

# KEYS: buckets. ARGV: now, then burst, per_second, ttl for each bucket.
# Returns "0" when a token was taken from every bucket, else the seconds to wait (as a string,
# because Redis would truncate a Lua number to an integer).
_TAKE_TOKENS = """
local now = tonumber(ARGV[1])
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[3 * i - 1])
  local rate = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', key, 't', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  local elapsed = math.max(0, now - at)
  tokens = math.min(burst, tokens + elapsed * rate)
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 't', tostring(levels[i] - 1), 'at', ARGV[1])
  redis.call('EXPIRE', key, ARGV[3 * i + 1])
end
return '0'
"""

# KEYS: counters. ARGV: ttl, then the limit of each counter.
# Returns {0, new counts...} when charged, else {index of the first full counter, current counts...}.
_CHARGE = """
local used = {}
for i, key in ipairs(KEYS) do
  used[i] = tonumber(redis.call('GET', key) or '0')
end
for i = 1, #KEYS do
  if used[i] >= tonumber(ARGV[i + 1]) then
    table.insert(used, 1, i)
    return used
  end
end
for i, key in ipairs(KEYS) do
  used[i] = redis.call('INCR', key)
  if used[i] == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
table.insert(used, 1, 0)
return used
"""

# KEYS: refund marker, then counters. ARGV: marker ttl. Returns 1 when refunded, 0 when already done.
_REFUND = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
"""


@asynccontextmanager
async def _reaching_redis() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise PolicyStoreError(f"Redis did not answer: {exc}") from exc


class RedisPolicyStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the Redis key prefix must not contain braces (they mark hash tags)")
        self.redis = client
        self.prefix = prefix
        self._take_tokens = client.register_script(_TAKE_TOKENS)
        self._charge = client.register_script(_CHARGE)
        self._refund = client.register_script(_REFUND)

    @classmethod
    def from_url(cls, url: str, prefix: str, max_connections: int = 64) -> RedisPolicyStore:
        # A bounded pool that makes a burst of decisions wait their turn for a connection
        # instead of failing; short timeouts so a stuck Redis refuses a message, not hangs it.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=2,
            decode_responses=True, socket_timeout=2, socket_connect_timeout=2,
        )
        return cls(aioredis.Redis(connection_pool=pool), prefix)

    def key(self, name: str) -> str:
        return self.prefix + name

    def _consent_key(self, owner: str) -> str:
        return self.key(f"voice:{{{owner}}}:consent")

    def _grants_key(self, owner: str) -> str:
        return self.key(f"voice:{{{owner}}}:grants")

    async def consent(self, owner: str) -> bool:
        async with _reaching_redis():
            return bool(await self.redis.exists(self._consent_key(owner)))

    async def set_consent(self, owner: str, enabled: bool) -> None:
        async with _reaching_redis():
            if enabled:
                await self.redis.set(self._consent_key(owner), "1")
            else:
                await self.redis.delete(self._consent_key(owner))

    async def put_grant(self, grant: Grant) -> None:
        async with _reaching_redis():
            await self.redis.hset(self._grants_key(grant.owner), grant.grantee, json.dumps(grant.to_record()))

    async def get_grant(self, owner: str, grantee: str) -> Grant | None:
        async with _reaching_redis():
            raw = await self.redis.hget(self._grants_key(owner), grantee)
        return Grant.from_record(json.loads(raw)) if raw else None

    async def delete_grant(self, owner: str, grantee: str) -> bool:
        async with _reaching_redis():
            return bool(await self.redis.hdel(self._grants_key(owner), grantee))

    async def list_grants(self, owner: str) -> list[Grant]:
        async with _reaching_redis():
            raw = await self.redis.hgetall(self._grants_key(owner))
        return sorted((Grant.from_record(json.loads(v)) for v in raw.values()), key=lambda g: g.grantee)

    async def voice_access(self, owner: str, grantee: str | None) -> tuple[bool, Grant | None]:
        async with _reaching_redis():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.exists(self._consent_key(owner))
                if grantee is not None:
                    pipe.hget(self._grants_key(owner), grantee)
                replies = await pipe.execute()
        raw = replies[1] if grantee is not None else None
        return bool(replies[0]), Grant.from_record(json.loads(raw)) if raw else None

    async def forget_voice(self, owner: str) -> None:
        async with _reaching_redis():
            await self.redis.delete(self._consent_key(owner), self._grants_key(owner))

    async def take_tokens(self, buckets: Sequence[tuple[str, RateLimit]], now: float) -> float:
        args: list[Any] = [repr(now)]
        for _, limit in buckets:
            args += [repr(float(limit.burst)), repr(float(limit.per_second)), limit.ttl_s]
        async with _reaching_redis():
            wait = await self._take_tokens(keys=[self.key(k) for k, _ in buckets], args=args)
        return float(wait)

    async def charge(self, counters: Sequence[tuple[str, int]], ttl_s: int, now: float) -> Charge:
        async with _reaching_redis():
            reply = await self._charge(keys=[self.key(k) for k, _ in counters],
                                       args=[ttl_s, *(limit for _, limit in counters)])
        full, *counts = (int(v) for v in reply)
        return Charge(counts=tuple(counts), full=full - 1 if full else None)

    async def refund(self, counters: Sequence[str], marker: str, ttl_s: int, now: float) -> bool:
        async with _reaching_redis():
            done = await self._refund(keys=[self.key(marker), *(self.key(k) for k in counters)], args=[ttl_s])
        return bool(done)

    async def counts(self, counters: Sequence[str], now: float) -> list[int]:
        if not counters:
            return []
        async with _reaching_redis():
            values = await self.redis.mget([self.key(k) for k in counters])
        return [int(v) if v else 0 for v in values]

    def audit_log(self, max_len: int) -> RedisStreamAuditLog:
        return RedisStreamAuditLog(self.redis, self.key("audit"), max_len)

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)


class RedisStreamAuditLog:
    """XADDs each record to one stream, trimmed to about `max_len` newest entries."""

    def __init__(self, client: aioredis.Redis, key: str, max_len: int) -> None:
        self.redis = client
        self.key = key
        self.max_len = max_len

    async def write(self, record: AuditRecord) -> None:
        fields = {k: ("" if v is None else str(v)) for k, v in record.to_json().items()}
        try:
            await self.redis.xadd(self.key, fields, maxlen=self.max_len, approximate=True)  # type: ignore[arg-type]
        except RedisError as exc:
            raise PolicyStoreError(f"could not write the audit record: {exc}") from exc

    async def close(self) -> None:
        pass
