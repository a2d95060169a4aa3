"""Time for policy decisions: an injectable clock and the daily quota window.

Every decision reads the time from one `Clock` so tests can move the day forward
without waiting, and so the Redis store computes expiries from the same clock
rather than from the server's own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that only moves when told to; for tests and benchmarks."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a time zone-aware start time")
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Asia/Shanghai'"
        ) from exc


@dataclasses.dataclass(frozen=True)
class DayWindow:
    """The quota day containing a moment: its local date and when it ends."""

    day: str  # local date, YYYY-MM-DD; part of every counter key
    resets_at: dt.datetime  # the next local midnight, in UTC

    def seconds_left(self, now: dt.datetime) -> float:
        return max(0.0, (self.resets_at - now).total_seconds())


def day_window(now: dt.datetime, zone: ZoneInfo) -> DayWindow:
    local = now.astimezone(zone)
    next_midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return DayWindow(day=local.date().isoformat(), resets_at=next_midnight.astimezone(dt.UTC))


def iso_utc(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, to the second: the form every API field uses."""
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
