"""When the store or the audit log fails, nothing is spoken, nothing is charged, and the reason is plain."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_helpers import ALICE, say

from policy.audit import JsonlAuditLog, derive_audit_key
from policy.clock import ManualClock
from policy.config import (
    PolicyConfig,
    RateLimit,
    parse_account_limits,
    parse_blocklist_paths,
    parse_rate_limit,
)
from policy.memory_store import MemoryPolicyStore
from policy.redis_store import RedisPolicyStore
from policy.service import PolicyService
from policy.voice_directory import StaticVoiceDirectory
from voxroom.errors import ErrorCode, VoxroomError


async def test_an_unreachable_redis_refuses_with_internal(clock: ManualClock, tmp_path: Path) -> None:
    store = RedisPolicyStore.from_url("redis://127.0.0.1:1/0", "voxroom-test-down:")
    service = PolicyService(PolicyConfig(clock=clock, audit_path=tmp_path / "a.jsonl"), store,
                            StaticVoiceDirectory({"alice"}))
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE, None)
    assert caught.value.code == ErrorCode.INTERNAL
    assert "try again shortly" in caught.value.message
    with pytest.raises(VoxroomError) as caught:
        await service.set_consent("alice", True)
    assert caught.value.code == ErrorCode.INTERNAL
    await service.close()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to make a full disk")
async def test_no_decision_without_its_audit_record(clock: ManualClock) -> None:
    store = MemoryPolicyStore()
    config = PolicyConfig(clock=clock, audit_path=None)
    full_disk = JsonlAuditLog(Path("/dev/full"))
    service = PolicyService(config, store, StaticVoiceDirectory({"alice"}), audit=full_disk)
    await service.set_consent("alice", True)
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE)
    assert caught.value.code == ErrorCode.INTERNAL
    assert (await service.quota_for("alice")).used == 0


def test_account_limit_overrides_parse_and_explain_mistakes() -> None:
    assert parse_account_limits(" alice=100, bot-7=5 ,") == {"alice": 100, "bot-7": 5}
    assert parse_account_limits("") == {}
    for bad, needle in [("alice", "account=limit"), ("alice=ten", "whole number"), ("bob=-1", "0 or more")]:
        with pytest.raises(ValueError, match=needle):
            parse_account_limits(bad)


def test_config_checks_its_values() -> None:
    assert parse_blocklist_paths("/a/one.txt:/b/two.txt") == (Path("/a/one.txt"), Path("/b/two.txt"))
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        PolicyConfig(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="0 or more"):
        PolicyConfig(daily_limit=-1)
    assert parse_rate_limit("20,1") == RateLimit(burst=20, per_second=1.0)
    for bad in ("20", "0,1", "5,0", "x,y"):
        with pytest.raises(ValueError, match="BURST,PER_SECOND"):
            parse_rate_limit(bad)
    assert derive_audit_key("secret") == derive_audit_key("secret") != derive_audit_key("other")
    config = PolicyConfig(daily_limit=7, per_account_limits={"bot-7": 70})
    assert (config.limit_for("bot-7"), config.limit_for("alice")) == (70, 7)
