"""Helpers shared by the policy tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from policy.audit import JsonlAuditLog
from policy.redis_store import RedisStreamAuditLog
from policy.service import PolicyService, SayPermit
from voxroom.identity import Account

REDIS_URL = "redis://127.0.0.1:6379/0"
ALICE = Account("alice")
BOB = Account("bob")
BOT = Account("bot-7", kind="bot")
OWN = object()  # "speak in the sender's own voice"

MakeService = Callable[..., PolicyService]


async def say(
    service: PolicyService,
    sender: Account,
    voice: str | None | object = OWN,
    text: str = "hello everyone",
    room: str = "lobby",
    connection: str = "conn-1",
) -> SayPermit:
    owner = sender.id if voice is OWN else voice
    assert owner is None or isinstance(owner, str)
    return await service.authorize_say(
        sender=sender, voice_owner=owner, room=room, text=text, connection_id=connection
    )


async def audit_records(service: PolicyService) -> list[dict[str, Any]]:
    """Every record the service's audit log holds, oldest first, as plain dicts."""
    audit = service.audit
    if isinstance(audit, JsonlAuditLog):
        return [json.loads(line) for line in audit.path.read_text(encoding="utf-8").splitlines()]
    assert isinstance(audit, RedisStreamAuditLog)
    entries = await audit.redis.xrange(audit.key)
    return [{k: (v or None) for k, v in fields.items()} for _, fields in entries]

