"""Everything the policy layer can be tuned with, as one frozen value built at start-up."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from policy.clock import Clock, load_zone, system_clock


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` messages at once, then `per_second` on average."""

    burst: float
    per_second: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_second <= 0:
            raise ValueError("a rate limit needs burst >= 1 and per_second > 0")

    @property
    def ttl_s(self) -> int:
        """How long an idle bucket takes to fill up again; after that its state can be dropped."""
        return int(self.burst / self.per_second) + 1


# A person typing in a chat rarely sends more than a few lines in a burst and a
# line every couple of seconds; a script sending several a second runs dry at once.
DEFAULT_ACCOUNT_RATE = RateLimit(burst=20, per_second=1.0)
DEFAULT_CONNECTION_RATE = RateLimit(burst=10, per_second=0.5)


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    daily_limit: int = 50
    # Account id -> its own daily limit, overriding `daily_limit`.
    per_account_limits: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # The quota day starts at midnight in this IANA time zone.
    timezone: str = "UTC"
    account_rate: RateLimit = DEFAULT_ACCOUNT_RATE
    connection_rate: RateLimit = DEFAULT_CONNECTION_RATE
    # Block list files: one term per line, `term|category`; none are shipped.
    blocklist_paths: tuple[Path, ...] = ()
    # JSON-lines audit log, used when the store is in memory; None keeps no file log.
    audit_path: Path | None = Path("voxroom-data") / "audit.jsonl"
    # Key for the audit log's text hashes; derive it from the deployment secret so hashes
    # stay comparable across restarts. None = a random key per process.
    audit_key: bytes | None = None
    # Newest entries kept in the Redis audit stream (approximate trim).
    audit_stream_max: int = 1_000_000
    clock: Clock = system_clock

    def __post_init__(self) -> None:
        if self.daily_limit < 0:
            raise ValueError("daily_limit must be 0 or more")
        for account, limit in self.per_account_limits.items():
            if limit < 0:
                raise ValueError(f"daily limit for {account!r} must be 0 or more")
        load_zone(self.timezone)  # fail at start-up, not on the first message
        object.__setattr__(self, "per_account_limits", MappingProxyType(dict(self.per_account_limits)))
        object.__setattr__(self, "blocklist_paths", tuple(Path(p) for p in self.blocklist_paths))

    def limit_for(self, account: str) -> int:
        return self.per_account_limits.get(account, self.daily_limit)


def parse_account_limits(value: str) -> dict[str, int]:
    """Parse `alice=100,bot-7=500` (the VOXROOM_DAILY_LIMIT_OVERRIDES form) into a dict."""
    limits: dict[str, int] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        account, sep, number = item.rpartition("=")
        account = account.strip()
        if not sep or not account:
            raise ValueError(f"expected account=limit, got {item!r}")
        try:
            limits[account] = int(number)
        except ValueError as exc:
            raise ValueError(f"daily limit for {account!r} is not a whole number: {number!r}") from exc
        if limits[account] < 0:
            raise ValueError(f"daily limit for {account!r} must be 0 or more")
    return limits


def parse_blocklist_paths(value: str) -> tuple[Path, ...]:
    """Parse VOXROOM_BLOCKLIST: one or more file paths separated by the OS path separator (':')."""
    return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())


def parse_rate_limit(value: str) -> RateLimit:
    """Parse `BURST,PER_SECOND` (VOXROOM_RATE_ACCOUNT, VOXROOM_RATE_CONNECTION), e.g. `20,1`."""
    burst, sep, rate = value.partition(",")
    try:
        if not sep:
            raise ValueError
        return RateLimit(burst=float(burst), per_second=float(rate))
    except ValueError as exc:
        raise ValueError(
            f"expected BURST,PER_SECOND such as 20,1 (burst >= 1, per_second > 0), got {value!r}"
        ) from exc
