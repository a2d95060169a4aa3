"""The audit log: one record per policy decision, never the message text.

A record holds when, who sent, whose voice, which grant allowed it, which room,
the decision and its reason, and a keyed hash (HMAC-SHA256) of the text: enough
to tell whether two decisions concerned the same text, or to confirm a text
someone reports, without keeping what was said. The records go to a JSON-lines
file in the embedded setup and to a Redis Stream when Redis is configured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class AuditRecord:
    time: str  # ISO 8601 UTC
    decision_id: str
    decision: str  # "accepted", "refused" or "refunded"
    reason: str  # "ok" or the error code
    sender: str
    voice_owner: str | None  # None = a stock voice
    grant: str | None
    room: str
    connection: str
    text_hmac: str
    category: str | None = None  # for content_blocked

    def to_json(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies and shows up in the decision profile.
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def derive_audit_key(secret: str) -> bytes:
    """The audit hash key, derived from the deployment secret so hashes survive restarts."""
    return hmac.new(secret.encode("utf-8"), b"voxroom audit text hash", hashlib.sha256).digest()


def text_hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


class AuditLog(Protocol):
    async def write(self, record: AuditRecord) -> None: ...
    async def close(self) -> None: ...


class JsonlAuditLog:
    """Appends one JSON object per line; the file is created with mode 0600."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = asyncio.Lock()

    async def write(self, record: AuditRecord) -> None:
        line = json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        async with self._lock:
            # A few hundred bytes into the page cache: quicker inline than a thread hop.
            self._file.write(line)
            self._file.flush()

    async def close(self) -> None:
        self._file.close()


class NullAuditLog:
    """Keeps nothing: for a deployment that explicitly turned the file log off."""

    async def write(self, record: AuditRecord) -> None:
        pass

    async def close(self) -> None:
        pass
