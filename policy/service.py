"""The one decision every `say` passes before any audio is made, and the voice owner's controls.

`PolicyService.authorize_say` checks, in this order: the rate limits (per account
and per connection), the content filter, the voice (enrolled, consent on, a live
grant when the sender is not the owner), then charges the daily quotas of the
sender and of the voice owner together. Any refusal raises `VoxroomError`, costs
no quota and is explained in words the person can act on. Every decision, yes or
no, is written to the audit log with a keyed hash of the text, never the text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import os
import re
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from policy.audit import AuditLog, AuditRecord, JsonlAuditLog, NullAuditLog, text_hmac
from policy.clock import day_window, iso_utc, load_zone
from policy.config import PolicyConfig
from policy.content_filter import ContentFilter
from policy.store import Grant, PolicyStore, PolicyStoreError
from policy.voice_directory import VoiceDirectory
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.identity import Account

log = logging.getLogger(__name__)
T = TypeVar("T")

# Daily counters outlive their day by this much, so a refund arriving just after
# midnight still finds the counter it charged.
_COUNTER_GRACE_S = 3600
_REFUND_MARKER_TTL_S = 2 * 86400
_MAX_ACCOUNT_ID = 128
_ACCOUNT_ID = re.compile(r"[^\s/\x00-\x1f\x7f]+")


@dataclasses.dataclass(frozen=True)
class Quota:
    used: int
    limit: int
    resets_at: str  # ISO 8601 UTC

    def to_json(self) -> dict[str, object]:
        return {"used": self.used, "limit": self.limit, "resets_at": self.resets_at}


@dataclasses.dataclass(frozen=True)
class SayPermit:
    sender: Account
    voice_owner: str | None  # None = a stock voice
    grant: str | None  # the id of the grant that allowed it, when the sender is not the owner
    room: str
    quota: Quota
    decision_id: str
    # What `refund` needs: the counters charged and the marker that makes a refund happen once.
    counters: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)
    refund_marker: str = dataclasses.field(default="", repr=False, compare=False)
    text_hmac: str = dataclasses.field(default="", repr=False, compare=False)
    connection_id: str = dataclasses.field(default="", repr=False, compare=False)


_STORE_DOWN = "Permission checks are unavailable right now, so nothing was spoken; try again shortly."


def create_audit_log(config: PolicyConfig, store: PolicyStore) -> AuditLog:
    """The store's own log when it has one (a Redis Stream), else the configured file."""
    own = store.audit_log(config.audit_stream_max)
    if own is not None:
        return own
    return JsonlAuditLog(config.audit_path) if config.audit_path else NullAuditLog()


class PolicyService:
    def __init__(
        self,
        config: PolicyConfig,
        store: PolicyStore,
        voices: VoiceDirectory,
        *,
        audit: AuditLog | None = None,
        content_filter: ContentFilter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.voices = voices
        self.audit = audit if audit is not None else create_audit_log(config, store)
        self.content_filter = content_filter or ContentFilter.from_files(config.blocklist_paths)
        self._zone = load_zone(config.timezone)
        self._clock = config.clock
        # Without a configured key the hashes are only comparable within this process's lifetime.
        self._audit_key = config.audit_key or os.urandom(32)

    async def close(self) -> None:
        await self.audit.close()
        await self.store.close()

    # ---- the decision ----------------------------------------------------------------

    async def authorize_say(
        self, *, sender: Account, voice_owner: str | None, room: str, text: str, connection_id: str
    ) -> SayPermit:
        now = self._clock()
        record = AuditRecord(
            time=iso_utc(now), decision_id=uuid.uuid4().hex, decision="accepted", reason="ok",
            sender=sender.id, voice_owner=voice_owner, grant=None, room=room, connection=connection_id,
            text_hmac=text_hmac(self._audit_key, text),
        )
        try:
            await self._check_rate(sender, connection_id, now)
            self._check_content(text)
            grant = await self._check_voice(sender, voice_owner, now)
            permit = await self._charge(sender, voice_owner, grant, room, now, record, connection_id)
        except VoxroomError as refusal:
            category = refusal.details.get("category")
            await self._write_refusal(dataclasses.replace(
                record, decision="refused", reason=str(refusal.code),
                category=str(category) if category else None,
            ))
            raise
        except PolicyStoreError as exc:
            log.error("policy store unavailable: %s", exc)
            raise VoxroomError(ErrorCode.INTERNAL, _STORE_DOWN) from exc
        try:
            await self.audit.write(dataclasses.replace(record, grant=permit.grant))
        except BaseException as exc:
            # No decision without its audit record, and a cancelled one costs nothing: take the charge back.
            await self._refund_quietly(permit)
            if not isinstance(exc, Exception):
                raise
            log.error("audit log unavailable, refusing: %s", exc)
            raise VoxroomError(ErrorCode.INTERNAL, _STORE_DOWN) from exc
        return permit

    async def _check_rate(self, sender: Account, connection_id: str, now: dt.datetime) -> None:
        buckets = [
            (f"rate:{{{sender.id}}}:account", self.config.account_rate),
            (f"rate:{{{sender.id}}}:conn:{connection_id}", self.config.connection_rate),
        ]
        wait = await self.store.take_tokens(buckets, now.timestamp())
        if wait > 0:
            retry = math.ceil(wait * 10) / 10
            raise VoxroomError(
                ErrorCode.RATE_LIMITED,
                f"You are sending messages too quickly; wait {retry:g} seconds and try again.",
                retry_after_s=retry,
            )

    def _check_content(self, text: str) -> None:
        category = self.content_filter.check(text)
        if category is not None:
            raise VoxroomError(
                ErrorCode.CONTENT_BLOCKED,
                f"This message was blocked by the content filter ({category}) and was not spoken; "
                "please rephrase it.",
                details={"category": category},
            )

    async def _check_voice(self, sender: Account, owner: str | None, now: dt.datetime) -> Grant | None:
        """The grant that lets `sender` speak in `owner`'s voice (None for their own or a stock voice)."""
        if owner is None:
            return None
        own = owner == sender.id
        if not await self.voices.has_voice(owner):
            raise VoxroomError(ErrorCode.NO_VOICE, (
                "You have no enrolled voice yet; record one first, or pick a stock voice." if own else
                f"{owner} has no enrolled voice; pick another voice."
            ))
        consent, grant = await self.store.voice_access(owner, None if own else sender.id)
        # Someone without a grant is told only that: whether the owner's consent is on is none of their business.
        if not own and grant is None:
            raise VoxroomError(ErrorCode.FORBIDDEN, (
                f"{owner} has not allowed {sender.id} to speak in their voice; ask them for a grant."
            ))
        if not own and grant is not None and not grant.live_at(now):
            assert grant.expires_at is not None
            raise VoxroomError(ErrorCode.FORBIDDEN, (
                f"{sender.id}'s permission to speak in {owner}'s voice expired at "
                f"{iso_utc(grant.expires_at)}; ask {owner} to renew it."
            ))
        if not consent:
            raise VoxroomError(ErrorCode.CONSENT_REQUIRED, (
                "You have not switched on synthesis in your voice yet; turn it on in your voice settings."
                if own else f"{owner} has not switched on synthesis in their voice yet."
            ))
        return grant

    async def _charge(
        self, sender: Account, owner: str | None, grant: Grant | None, room: str,
        now: dt.datetime, record: AuditRecord, connection_id: str,
    ) -> SayPermit:
        window = day_window(now, self._zone)
        # Two counters: what an account sent today, and what was spoken in an account's voice.
        counters = [(f"quota:{{{window.day}}}:sent:{sender.id}", self.config.limit_for(sender.id))]
        if owner is not None:
            counters.append((f"quota:{{{window.day}}}:voice:{owner}", self.config.limit_for(owner)))
        ttl = math.ceil(window.seconds_left(now)) + _COUNTER_GRACE_S
        charge = await self.store.charge(counters, ttl, now.timestamp())
        resets_at = iso_utc(window.resets_at)
        if not charge.accepted:
            limit = counters[charge.full or 0][1]
            message = (
                f"You have used all {limit} of today's messages; the count resets at {resets_at}."
                if charge.full == 0 else
                f"{owner}'s voice has been used {limit} times today, its daily limit; "
                f"it resets at {resets_at}."
            )
            raise VoxroomError(ErrorCode.DAILY_LIMIT, message,
                               retry_after_s=float(math.ceil(window.seconds_left(now))))
        # Report the quota closest to running out.
        used, limit = min(((c, lim) for c, (_, lim) in zip(charge.counts, counters, strict=True)),
                          key=lambda pair: pair[1] - pair[0])
        return SayPermit(
            sender=sender, voice_owner=owner, grant=grant.grant_id if grant else None, room=room,
            quota=Quota(used=used, limit=limit, resets_at=resets_at), decision_id=record.decision_id,
            counters=tuple(key for key, _ in counters),
            refund_marker=f"quota:{{{window.day}}}:refund:{record.decision_id}",
            text_hmac=record.text_hmac, connection_id=connection_id,
        )

    async def _write_refusal(self, record: AuditRecord) -> None:
        try:
            await self.audit.write(record)
        except Exception as exc:  # the refusal stands whether or not it could be recorded
            log.error("audit log unavailable for a refusal: %s", exc)

    # ---- after the decision ----------------------------------------------------------

    async def refund(self, permit: SayPermit) -> None:
        """Undo the quota charge of an utterance refused after its permit (e.g. overloaded). Idempotent."""
        if not permit.counters:
            return  # nothing was charged for it
        now = self._clock()
        try:
            refunded = await self.store.refund(permit.counters, permit.refund_marker,
                                               _REFUND_MARKER_TTL_S, now.timestamp())
        except PolicyStoreError as exc:
            raise VoxroomError(ErrorCode.INTERNAL, _STORE_DOWN) from exc
        if refunded:
            await self._write_refusal(AuditRecord(
                time=iso_utc(now), decision_id=permit.decision_id, decision="refunded", reason="refund",
                sender=permit.sender.id, voice_owner=permit.voice_owner, grant=permit.grant,
                room=permit.room, connection=permit.connection_id, text_hmac=permit.text_hmac,
            ))

    async def _refund_quietly(self, permit: SayPermit) -> None:
        try:
            await self.store.refund(permit.counters, permit.refund_marker, _REFUND_MARKER_TTL_S,
                                    self._clock().timestamp())
        except PolicyStoreError as exc:
            log.error("could not refund %s: %s", permit.decision_id, exc)

    async def still_allowed(self, permit: SayPermit) -> bool:
        """Whether a queued utterance may still be made: consent still on and, for a grantee, a live grant.

        Checked just before synthesis starts, so switching consent off or revoking a grant also stops
        utterances already waiting. A store that cannot answer counts as no.
        """
        owner = permit.voice_owner
        if owner is None:
            return True
        own = owner == permit.sender.id
        try:
            consent, grant = await self.store.voice_access(owner, None if own else permit.sender.id)
        except PolicyStoreError as exc:
            log.error("policy store unavailable while re-checking %s: %s", permit.decision_id, exc)
            return False
        return consent and (own or (grant is not None and grant.live_at(self._clock())))

    # ---- the voice owner's controls --------------------------------------------------

    async def set_consent(self, owner: str, enabled: bool) -> None:
        if enabled and not await self.voices.has_voice(owner):
            raise VoxroomError(ErrorCode.NO_VOICE,
                               "You have no enrolled voice yet; record one before switching synthesis on.")
        await self._store_call(self.store.set_consent(owner, enabled))

    async def consent(self, owner: str) -> bool:
        return bool(await self._store_call(self.store.consent(owner)))

    async def add_grant(self, owner: str, grantee: str, expires_at: dt.datetime | None) -> Grant:
        """Let `grantee` speak in `owner`'s voice until `expires_at` (None = until revoked).

        Replaces any earlier grant to the same account.
        """
        now = self._clock()
        check_account_id(grantee, "grantee")
        if grantee == owner:
            raise VoxroomError(ErrorCode.BAD_REQUEST,
                               "You cannot grant your voice to yourself; you can already speak in it.")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise VoxroomError(ErrorCode.BAD_REQUEST,
                                   "expires_at needs a time zone, for example 2026-12-31T18:00:00Z.")
            if expires_at <= now:
                raise VoxroomError(ErrorCode.BAD_REQUEST,
                                   f"expires_at ({iso_utc(expires_at)}) is in the past; pick a later time.")
        if not await self.voices.has_voice(owner):
            raise VoxroomError(ErrorCode.NO_VOICE,
                               "You have no enrolled voice to share yet; record one first.")
        grant = Grant(owner=owner, grantee=grantee, grant_id=uuid.uuid4().hex, created_at=now,
                      expires_at=expires_at.astimezone(dt.UTC) if expires_at else None)
        await self._store_call(self.store.put_grant(grant))
        return grant

    async def revoke_grant(self, owner: str, grantee: str) -> bool:
        return bool(await self._store_call(self.store.delete_grant(owner, grantee)))

    async def grants(self, owner: str) -> list[Grant]:
        """The owner's grants that are still live."""
        now = self._clock()
        grants = await self._store_call(self.store.list_grants(owner))
        return [g for g in grants if g.live_at(now)]

    async def consent_info(self, owner: str) -> dict[str, object]:
        """What GET /v1/voices/me shows of the policy: consent, live grants, today's quota."""
        quota = await self.quota_for(owner)
        return {
            "consent": await self.consent(owner),
            "grants": [grant.to_json() for grant in await self.grants(owner)],
            "quota": quota.to_json(),
        }

    async def forget_voice(self, owner: str) -> None:
        """On voice deletion: consent and every grant of that voice are erased."""
        await self._store_call(self.store.forget_voice(owner))

    async def quota_for(self, account: str) -> Quota:
        """Today's use of the account: the higher of what it sent and what was spoken in its voice."""
        now = self._clock()
        window = day_window(now, self._zone)
        counts = await self._store_call(self.store.counts(
            [f"quota:{{{window.day}}}:sent:{account}", f"quota:{{{window.day}}}:voice:{account}"],
            now.timestamp(),
        ))
        return Quota(used=max(counts), limit=self.config.limit_for(account),
                     resets_at=iso_utc(window.resets_at))

    @staticmethod
    async def _store_call(call: Awaitable[T]) -> T:
        try:
            return await call
        except PolicyStoreError as exc:
            log.error("policy store unavailable: %s", exc)
            raise VoxroomError(ErrorCode.INTERNAL,
                               "Voice settings are unavailable right now; try again shortly.") from exc


def check_account_id(value: object, field: str) -> str:
    """An account id as tokens carry it: 1 to 128 characters, no spaces, slashes or control characters."""
    if not isinstance(value, str) or not value:
        raise VoxroomError(ErrorCode.BAD_REQUEST, f"{field} must be a non-empty account id.")
    if len(value) > _MAX_ACCOUNT_ID or not _ACCOUNT_ID.fullmatch(value):
        raise VoxroomError(ErrorCode.BAD_REQUEST,
                           f"{field} must be an account id of at most {_MAX_ACCOUNT_ID} characters "
                           "without spaces or slashes.")
    return value
