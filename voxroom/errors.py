"""Every refusal the protocol names, as one enum, raised as one exception type.

This module is a leaf: every layer (gateway, policy, synth, rooms) may import it,
and it imports nothing of ours. The gateway turns a `VoxroomError` into the wire
`error` message in one place.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    BAD_REQUEST = "bad_request"
    NOT_IN_ROOM = "not_in_room"
    FORBIDDEN = "forbidden"
    NO_VOICE = "no_voice"
    CONSENT_REQUIRED = "consent_required"
    DAILY_LIMIT = "daily_limit"
    RATE_LIMITED = "rate_limited"
    CONTENT_BLOCKED = "content_blocked"
    OVERLOADED = "overloaded"
    INTERNAL = "internal"


# A default plain-language message per code: what a person can do about it.
DEFAULT_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "The request was not understood.",
    ErrorCode.NOT_IN_ROOM: "Join the room before speaking or leaving it.",
    ErrorCode.FORBIDDEN: "You are not allowed to do this.",
    ErrorCode.NO_VOICE: "That account has no enrolled voice.",
    ErrorCode.CONSENT_REQUIRED: "The owner of this voice has not switched synthesis on.",
    ErrorCode.DAILY_LIMIT: "Today's quota is spent; it resets at the time given.",
    ErrorCode.RATE_LIMITED: "Too many messages in a short time; wait a moment and try again.",
    ErrorCode.CONTENT_BLOCKED: "This message was blocked by the content filter and was not spoken.",
    ErrorCode.OVERLOADED: "The server is busy; nothing was charged, try again shortly.",
    ErrorCode.INTERNAL: "Something went wrong on the server; the connection is still usable.",
}

# HTTP status for each code when it is returned by the HTTP API.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.NOT_IN_ROOM: 409,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NO_VOICE: 404,
    ErrorCode.CONSENT_REQUIRED: 403,
    ErrorCode.DAILY_LIMIT: 429,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONTENT_BLOCKED: 422,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.INTERNAL: 500,
}


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    UNAUTHORIZED = 4401
    TOO_SLOW = 4008


class VoxroomError(Exception):
    """A refusal the client is told about: a code, a message, and maybe when to retry.

    `details` carries extra fields for the wire (e.g. `category` for content_blocked).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        retry_after_s: float | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        self.code = ErrorCode(code)
        self.message = message or DEFAULT_MESSAGES[self.code]
        self.retry_after_s = retry_after_s
        self.details = dict(details or {})
        super().__init__(f"{self.code}: {self.message}")
