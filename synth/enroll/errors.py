"""Why an upload was refused; the HTTP layer maps each to its 4xx status."""

from __future__ import annotations

from typing import Any


class EnrollmentError(Exception):
    """Base of every refusal of an upload; `message` is for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UploadTooLarge(EnrollmentError):
    """More bytes than any accepted recording needs (HTTP 413)."""


class UnsupportedAudioType(EnrollmentError):
    """A content type we do not decode (HTTP 415)."""


class RecordingRejected(EnrollmentError):
    """The recording failed the quality gate (HTTP 422 with the quality report)."""

    def __init__(self, quality: dict[str, Any]) -> None:
        super().__init__(" ".join(quality.get("advice") or ["The recording is not good enough."]))
        self.quality = quality
