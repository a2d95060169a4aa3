"""Consent and grants: who may speak in whose voice, and when that changes."""

from __future__ import annotations

import datetime as dt

import pytest
from policy_helpers import ALICE, BOB, BOT, OWN, say

from policy.clock import ManualClock
from policy.service import PolicyService
from policy.voice_directory import StaticVoiceDirectory
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.identity import Account


async def refusal(coro) -> VoxroomError:  # type: ignore[no-untyped-def]
    with pytest.raises(VoxroomError) as caught:
        await coro
    return caught.value


async def test_consent_is_off_by_default(service: PolicyService) -> None:
    assert await service.consent("alice") is False
    error = await refusal(say(service, ALICE))
    assert error.code == ErrorCode.CONSENT_REQUIRED
    assert "switched on synthesis" in error.message


async def test_consent_on_off_on(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    assert (await say(service, ALICE)).voice_owner == "alice"
    await service.set_consent("alice", False)
    assert await service.consent("alice") is False
    assert (await refusal(say(service, ALICE))).code == ErrorCode.CONSENT_REQUIRED
    await service.set_consent("alice", True)
    assert (await say(service, ALICE)).voice_owner == "alice"


async def test_others_hear_the_owner_named_when_consent_is_off(service: PolicyService) -> None:
    await service.add_grant("alice", "bot-7", None)
    error = await refusal(say(service, BOT, "alice"))
    assert error.code == ErrorCode.CONSENT_REQUIRED
    assert error.message == "alice has not switched on synthesis in their voice yet."


async def test_consent_cannot_be_switched_on_without_a_voice(service: PolicyService) -> None:
    error = await refusal(service.set_consent("dave", True))
    assert error.code == ErrorCode.NO_VOICE
    await service.set_consent("dave", False)  # switching off is always allowed
    assert await service.consent("dave") is False


async def test_a_voice_never_enrolled_is_no_voice(service: PolicyService) -> None:
    error = await refusal(say(service, ALICE, "dave"))
    assert error.code == ErrorCode.NO_VOICE
    assert "dave" in error.message


async def test_stock_voice_needs_no_consent(service: PolicyService) -> None:
    permit = await say(service, Account("dave"), None)
    assert permit.voice_owner is None and permit.grant is None


async def test_bot_with_a_grant_speaks_and_the_grant_is_recorded(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    grant = await service.add_grant("alice", "bot-7", None)
    permit = await say(service, BOT, "alice")
    assert permit.grant == grant.grant_id
    assert permit.voice_owner == "alice"


async def test_bot_without_a_grant_is_forbidden(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bot-8", None)  # a grant to someone else does not count
    error = await refusal(say(service, BOT, "alice"))
    assert error.code == ErrorCode.FORBIDDEN
    assert "ask them for a grant" in error.message


async def test_without_a_grant_the_owners_consent_is_not_revealed(service: PolicyService) -> None:
    # Consent off or on, someone without a grant hears the same answer: forbidden.
    assert (await refusal(say(service, BOT, "alice"))).code == ErrorCode.FORBIDDEN
    await service.set_consent("alice", True)
    assert (await refusal(say(service, BOT, "alice"))).code == ErrorCode.FORBIDDEN


async def test_a_person_without_a_grant_is_forbidden_too(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    assert (await refusal(say(service, BOB, "alice"))).code == ErrorCode.FORBIDDEN


async def test_an_expired_grant_is_forbidden(service: PolicyService, clock: ManualClock) -> None:
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bot-7", clock() + dt.timedelta(hours=1))
    permit = await say(service, BOT, "alice")
    clock.advance(3600)
    error = await refusal(say(service, BOT, "alice"))
    assert error.code == ErrorCode.FORBIDDEN
    assert "expired at 2026-03-14T13:00:00Z" in error.message
    assert await service.still_allowed(permit) is False
    assert await service.grants("alice") == []


async def test_a_revoked_grant_is_forbidden_at_once(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bot-7", None)
    permit = await say(service, BOT, "alice")
    assert await service.revoke_grant("alice", "bot-7") is True
    assert await service.revoke_grant("alice", "bot-7") is False
    assert (await refusal(say(service, BOT, "alice"))).code == ErrorCode.FORBIDDEN
    assert await service.still_allowed(permit) is False


async def test_a_bot_speaks_in_its_own_name_only_with_its_own_voice(
    service: PolicyService, voices: StaticVoiceDirectory
) -> None:
    assert (await refusal(say(service, BOT, OWN))).code == ErrorCode.NO_VOICE
    voices.owners.add("bot-7")
    assert (await refusal(say(service, BOT, OWN))).code == ErrorCode.CONSENT_REQUIRED
    await service.set_consent("bot-7", True)
    permit = await say(service, BOT, OWN)
    assert permit.voice_owner == "bot-7" and permit.grant is None


async def test_consent_off_stops_queued_utterances(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bot-7", None)
    own = await say(service, ALICE)
    granted = await say(service, BOT, "alice")
    stock = await say(service, ALICE, None)
    assert await service.still_allowed(own) and await service.still_allowed(granted)
    await service.set_consent("alice", False)
    assert await service.still_allowed(own) is False
    assert await service.still_allowed(granted) is False
    assert await service.still_allowed(stock) is True


async def test_grants_are_listed_replaced_and_validated(service: PolicyService, clock: ManualClock) -> None:
    first = await service.add_grant("alice", "bot-7", None)
    later = clock() + dt.timedelta(days=2)
    second = await service.add_grant("alice", "bot-7", later)
    await service.add_grant("alice", "bob", None)
    grants = await service.grants("alice")
    assert [g.grantee for g in grants] == ["bob", "bot-7"]
    assert grants[1].grant_id == second.grant_id != first.grant_id
    assert grants[1].expires_at == later
    for grantee, expires, code in [
        ("alice", None, ErrorCode.BAD_REQUEST),  # to oneself
        ("bot-7", clock() - dt.timedelta(seconds=1), ErrorCode.BAD_REQUEST),  # in the past
        ("bot-7", dt.datetime(2027, 1, 1), ErrorCode.BAD_REQUEST),  # no time zone
        ("", None, ErrorCode.BAD_REQUEST),
        ("a b", None, ErrorCode.BAD_REQUEST),
    ]:
        assert (await refusal(service.add_grant("alice", grantee, expires))).code == code
    assert (await refusal(service.add_grant("dave", "bot-7", None))).code == ErrorCode.NO_VOICE


async def test_forgetting_a_voice_erases_consent_and_grants(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    await service.add_grant("alice", "bot-7", None)
    await service.add_grant("bob", "bot-7", None)
    await service.forget_voice("alice")
    assert await service.consent("alice") is False
    assert await service.grants("alice") == []
    assert [g.grantee for g in await service.grants("bob")] == ["bot-7"]


async def test_consent_info_shows_what_the_owner_set(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    grant = await service.add_grant("alice", "bot-7", None)
    await say(service, ALICE)
    info = await service.consent_info("alice")
    assert info == {
        "consent": True,
        "grants": [{"grant_id": grant.grant_id, "grantee": "bot-7",
                    "created_at": "2026-03-14T12:00:00Z", "expires_at": None}],
        "quota": {"used": 1, "limit": 50, "resets_at": "2026-03-15T00:00:00Z"},
    }
