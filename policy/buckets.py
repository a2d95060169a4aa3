"""Token-bucket arithmetic, shared by the in-memory store (and mirrored by the Redis Lua script)."""

from __future__ import annotations

from policy.config import RateLimit


def refill(tokens: float, last: float, now: float, limit: RateLimit) -> float:
    """Tokens in a bucket at `now`, given `tokens` at `last`; a clock stepping back adds nothing."""
    return min(limit.burst, tokens + max(0.0, now - last) * limit.per_second)


def wait_for_token(tokens: float, limit: RateLimit) -> float:
    """Seconds until a bucket holding `tokens` has a whole token."""
    return max(0.0, (1.0 - tokens) / limit.per_second)
