"""The one interface behind which all policy state lives, and the factory that picks an implementation.

Two implementations share it and one test suite: `MemoryPolicyStore` (the embedded
default, one process) and `RedisPolicyStore` (several gateway processes sharing one
Redis). Every method that must be atomic across callers (charging quotas, taking
rate-limit tokens, refunding) is a single call here, so each implementation can make
it atomic its own way: no await inside the critical section in memory, one Lua script
on Redis.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from policy.clock import iso_utc
from policy.config import RateLimit

if TYPE_CHECKING:
    from policy.audit import AuditLog


@dataclasses.dataclass(frozen=True)
class Grant:
    """The owner of a voice lets `grantee` speak in it, until `expires_at` (None = until revoked)."""

    owner: str
    grantee: str
    grant_id: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = None

    def live_at(self, now: dt.datetime) -> bool:
        return self.expires_at is None or now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id,
            "grantee": self.grantee,
            "created_at": iso_utc(self.created_at),
            "expires_at": iso_utc(self.expires_at) if self.expires_at else None,
        }

    def to_record(self) -> dict[str, Any]:
        """The stored form: exact timestamps, so a stored grant reads back equal."""
        return {
            "owner": self.owner,
            "grantee": self.grantee,
            "grant_id": self.grant_id,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Grant:
        expires = record.get("expires_at")
        return cls(
            owner=record["owner"],
            grantee=record["grantee"],
            grant_id=record["grant_id"],
            created_at=dt.datetime.fromisoformat(record["created_at"]),
            expires_at=dt.datetime.fromisoformat(expires) if expires else None,
        )


@dataclasses.dataclass(frozen=True)
class Charge:
    """The outcome of charging several daily counters at once.

    Accepted: every counter was below its limit and each went up by one; `counts`
    holds the new values. Refused: nothing changed; `full` is the index of the first
    counter already at its limit and `counts` holds the current values.
    """

    counts: tuple[int, ...]
    full: int | None = None

    @property
    def accepted(self) -> bool:
        return self.full is None


class PolicyStoreError(Exception):
    """The store could not be reached or answered nonsense; the decision cannot be made."""


class PolicyStore(Protocol):
    # Consent: off unless set on.
    async def consent(self, owner: str) -> bool: ...
    async def set_consent(self, owner: str, enabled: bool) -> None: ...

    # Grants: at most one per (owner, grantee); putting another replaces it.
    async def put_grant(self, grant: Grant) -> None: ...
    async def get_grant(self, owner: str, grantee: str) -> Grant | None: ...
    async def delete_grant(self, owner: str, grantee: str) -> bool: ...
    async def list_grants(self, owner: str) -> list[Grant]: ...

    async def voice_access(self, owner: str, grantee: str | None) -> tuple[bool, Grant | None]:
        """The owner's consent and, when `grantee` is given, their grant to it: in one round trip."""
        ...

    async def forget_voice(self, owner: str) -> None:
        """Erase the owner's consent and every grant they made."""
        ...

    async def take_tokens(self, buckets: Sequence[tuple[str, RateLimit]], now: float) -> float:
        """Take one token from every bucket, or from none.

        Returns 0.0 when taken, else the seconds until every empty bucket holds a token again.
        `now` is the policy clock in epoch seconds.
        """
        ...

    async def charge(self, counters: Sequence[tuple[str, int]], ttl_s: int, now: float) -> Charge:
        """Add one to every (counter, limit) if all are below their limits, atomically; else change nothing.

        Counters are created at 0 and dropped `ttl_s` seconds after their first charge.
        """
        ...

    async def refund(self, counters: Sequence[str], marker: str, ttl_s: int, now: float) -> bool:
        """Take back one charge from each counter, once per `marker`; False if already refunded."""
        ...

    async def counts(self, counters: Sequence[str], now: float) -> list[int]: ...

    def audit_log(self, max_len: int) -> AuditLog | None:
        """Where this store wants audit records kept, or None for the configured file."""
        ...

    async def close(self) -> None: ...


def create_store(redis_url: str | None, prefix: str = "voxroom:") -> PolicyStore:
    """In memory when `redis_url` is empty or None, else on that Redis; `prefix` starts every key."""
    if not redis_url:
        from policy.memory_store import MemoryPolicyStore

        return MemoryPolicyStore()
    from policy.redis_store import RedisPolicyStore

    return RedisPolicyStore.from_url(redis_url, prefix)
