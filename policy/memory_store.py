"""Policy state in this process: the embedded default.

Atomicity comes from asyncio itself: no method awaits between reading and
writing, so concurrent decisions on one event loop cannot interleave inside one.
Daily counters, rate buckets and refund markers expire by the policy clock and are
swept now and then, so a long-running server does not keep every day's counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from policy.buckets import refill, wait_for_token
from policy.config import RateLimit
from policy.store import Charge, Grant

_SWEEP_EVERY = 4096  # writes between sweeps of expired entries


class MemoryPolicyStore:
    def __init__(self) -> None:
        self._consent: set[str] = set()
        self._grants: dict[str, dict[str, Grant]] = {}
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._buckets: dict[str, tuple[float, float, float]] = {}  # key -> (tokens, at, expires at)
        self._markers: dict[str, float] = {}  # refund marker -> expires at
        self._writes = 0

    async def consent(self, owner: str) -> bool:
        return owner in self._consent

    async def set_consent(self, owner: str, enabled: bool) -> None:
        if enabled:
            self._consent.add(owner)
        else:
            self._consent.discard(owner)

    async def put_grant(self, grant: Grant) -> None:
        self._grants.setdefault(grant.owner, {})[grant.grantee] = grant

    async def get_grant(self, owner: str, grantee: str) -> Grant | None:
        return self._grants.get(owner, {}).get(grantee)

    async def delete_grant(self, owner: str, grantee: str) -> bool:
        grants = self._grants.get(owner, {})
        removed = grants.pop(grantee, None) is not None
        if not grants:
            self._grants.pop(owner, None)
        return removed

    async def list_grants(self, owner: str) -> list[Grant]:
        return sorted(self._grants.get(owner, {}).values(), key=lambda g: g.grantee)

    async def voice_access(self, owner: str, grantee: str | None) -> tuple[bool, Grant | None]:
        grant = self._grants.get(owner, {}).get(grantee) if grantee is not None else None
        return owner in self._consent, grant

    async def forget_voice(self, owner: str) -> None:
        self._consent.discard(owner)
        self._grants.pop(owner, None)

    async def take_tokens(self, buckets: Sequence[tuple[str, RateLimit]], now: float) -> float:
        levels = []
        for key, limit in buckets:
            tokens, at, expires = self._buckets.get(key, (limit.burst, now, 0.0))
            if expires and expires <= now:
                tokens, at = limit.burst, now
            levels.append(refill(tokens, at, now, limit))
        wait = max((wait_for_token(t, lim) for t, (_, lim) in zip(levels, buckets, strict=True) if t < 1.0),
                   default=0.0)
        if wait > 0:
            return wait
        for tokens, (key, limit) in zip(levels, buckets, strict=True):
            self._buckets[key] = (tokens - 1.0, now, now + limit.ttl_s)
        self._wrote(now)
        return 0.0

    async def charge(self, counters: Sequence[tuple[str, int]], ttl_s: int, now: float) -> Charge:
        current = [self._count(key, now) for key, _ in counters]
        for index, (used, (_, limit)) in enumerate(zip(current, counters, strict=True)):
            if used >= limit:
                return Charge(counts=tuple(current), full=index)
        for used, (key, _) in zip(current, counters, strict=True):
            # A counter keeps the expiry its first charge gave it, as EXPIRE does on Redis.
            expires = self._counters[key][1] if used > 0 else now + ttl_s
            self._counters[key] = (used + 1, expires)
        self._wrote(now)
        return Charge(counts=tuple(used + 1 for used in current))

    async def refund(self, counters: Sequence[str], marker: str, ttl_s: int, now: float) -> bool:
        if self._markers.get(marker, 0.0) > now:
            return False
        self._markers[marker] = now + ttl_s
        for key in counters:
            used = self._count(key, now)
            if used > 0:
                self._counters[key] = (used - 1, self._counters[key][1])
        self._wrote(now)
        return True

    async def counts(self, counters: Sequence[str], now: float) -> list[int]:
        return [self._count(key, now) for key in counters]

    def audit_log(self, max_len: int) -> None:
        return None  # the service falls back to the JSON-lines file

    async def close(self) -> None:
        pass

    def _count(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None or entry[1] <= now:
            return 0
        return entry[0]

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
            self._buckets = {k: v for k, v in self._buckets.items() if v[2] > now}
            self._markers = {k: v for k, v in self._markers.items() if v > now}
