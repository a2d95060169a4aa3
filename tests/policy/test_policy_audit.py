"""The audit log: one record per decision, and the text of a blocked message stored nowhere."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from policy_helpers import ALICE, BOB, BOT, MakeService, audit_records, say

from policy.audit import text_hmac
from policy.config import RateLimit
from policy.redis_store import RedisPolicyStore
from policy.service import PolicyService
from policy.store import PolicyStore
from voxroom.errors import VoxroomError
from voxroom.identity import Account

KEY = b"test audit key"


async def test_every_decision_leaves_one_record(make_service: MakeService) -> None:
    service = make_service(daily_limit=2, connection_rate=RateLimit(burst=5, per_second=0.001))
    await service.set_consent("alice", True)
    grant = await service.add_grant("alice", "bot-7", None)
    await service.add_grant("bob", "alice", None)  # alice may use bob's voice, once bob consents
    permit = await say(service, BOT, "alice", text="hello from the bot", room="den")
    attempts = [
        (ALICE, "bob", "hi"),  # granted, but no consent from bob
        (BOB, "alice", "hi"),  # no grant
        (ALICE, "dave", "hi"),  # no voice
        (ALICE, "alice", "you idiot"),  # blocked
    ]
    for sender, owner, text in attempts:
        with pytest.raises(VoxroomError):
            await say(service, sender, owner, text=text)
    await say(service, ALICE)
    with pytest.raises(VoxroomError):
        await say(service, ALICE)  # alice's voice: 2 of 2 used
    with pytest.raises(VoxroomError):
        await say(service, ALICE)  # alice's connection bucket (5) is now empty
    await service.refund(permit)

    records = await audit_records(service)
    summary = [(r["decision"], r["reason"], r["sender"], r["voice_owner"]) for r in records]
    assert summary == [
        ("accepted", "ok", "bot-7", "alice"),
        ("refused", "consent_required", "alice", "bob"),
        ("refused", "forbidden", "bob", "alice"),
        ("refused", "no_voice", "alice", "dave"),
        ("refused", "content_blocked", "alice", "alice"),
        ("accepted", "ok", "alice", "alice"),
        ("refused", "daily_limit", "alice", "alice"),
        ("refused", "rate_limited", "alice", "alice"),
        ("refunded", "refund", "bot-7", "alice"),
    ]
    first = records[0]
    assert first["grant"] == grant.grant_id == permit.grant
    assert first["room"] == "den"
    assert first["decision_id"] == permit.decision_id == records[-1]["decision_id"]
    assert first["text_hmac"] == text_hmac(KEY, "hello from the bot")
    assert dt.datetime.fromisoformat(first["time"]) == dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC)
    assert records[4]["category"] == "insult"
    assert all(r["grant"] is None for r in records[1:-1])


def _every_file_under(root: Path) -> list[str]:
    return [p.read_bytes().decode("utf-8") for p in root.rglob("*") if p.is_file()]


async def _everything_in_redis(store: RedisPolicyStore) -> str:
    dump = []
    async for key in store.redis.scan_iter(match=store.prefix + "*"):
        dump.append(key)
        kind = await store.redis.type(key)
        if kind == "string":
            dump.append(str(await store.redis.get(key)))
        elif kind == "hash":
            dump.append(str(await store.redis.hgetall(key)))
        elif kind == "stream":
            dump.append(str(await store.redis.xrange(key)))
        else:
            dump.append(f"unexpected {kind}")
    return "\n".join(dump)


async def test_blocked_text_is_stored_nowhere(
    make_service: MakeService, store: PolicyStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service = make_service()
    text = "the snargleblat ate homework 7f3a"
    with pytest.raises(VoxroomError):
        await say(service, Account("erin"), None, text=text)
    await say(service, Account("erin"), None, text="a harmless line 9c2e")
    records = await audit_records(service)
    assert [r["reason"] for r in records] == ["content_blocked", "ok"]
    assert records[0]["text_hmac"] == text_hmac(KEY, text)

    stored = _every_file_under(tmp_path)
    if isinstance(store, RedisPolicyStore):
        stored.append(await _everything_in_redis(store))
    stored.append(caplog.text)
    everything = "\n".join(stored)
    assert "erin" in everything  # the search does reach the records
    for fragment in ("snargleblat", "homework 7f3a", "9c2e"):
        assert fragment not in everything


async def test_text_hashes_depend_on_the_key(make_service: MakeService) -> None:
    assert text_hmac(b"one", "same text") != text_hmac(b"two", "same text")
    assert text_hmac(b"one", "same text") == text_hmac(b"one", "same text")
    service: PolicyService = make_service()
    await say(service, ALICE, None, text="same text")
    await say(service, BOB, None, text="same text")
    hashes = {r["text_hmac"] for r in await audit_records(service)}
    assert hashes == {text_hmac(KEY, "same text")}
