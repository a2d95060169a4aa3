"""Enrollment as the rest of the server sees it: enroll, status, delete, and the voice directory.

The upload is analysed in a background process (decoded, gated, turned into features)
and then forgotten; what is kept is encrypted in the voice store. The owner can speak
at once with the nearest built-in voice while the fit runs in the background; when it
finishes, the fitted voice replaces it and `on_voice_ready` tells the gateway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from synth import voice_colour
from synth.audio_io import ACCEPTED_CONTENT_TYPES
from synth.engines.base import Voice
from synth.engines.kokoro_layers import check_layers
from synth.enroll.contract import FIT_CPU_BUDGET_S
from synth.enroll.errors import RecordingRejected, UnsupportedAudioType, UploadTooLarge
from synth.enroll.jobs import EnrollmentWorkers
from synth.enroll.quality import GateLimits
from synth.voicestore import VoiceKeyError, VoiceRecord, VoiceStore
from voxroom.errors import ErrorCode, VoxroomError

log = logging.getLogger(__name__)

ENGINE = "kokoro"
DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024 * 1024  # 5 min of 16-bit 48 kHz mono WAV fits; a 50 MB file does not

OwnerHook = Callable[[str], Awaitable[None]]
# Drop the owner's cached audio made in voice versions older than the given one (and refuse it if it comes late).
PurgeHook = Callable[[str, int], Awaitable[None]]
VoiceReadyHook = Callable[[str, dict[str, Any]], Awaitable[None]]
ConsentInfo = Callable[[str], Awaitable[dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class FitOutcome:
    """What an operator needs of a finished fit (no owner: logs and metrics keep no names)."""

    ready: bool  # False: the fit failed and the voice stays on its stock pack
    cpu_s: float | None = None
    similarity: float | None = None  # the 0..1 score the owner sees
    colour_share: float | None = None  # None: the fit left no time for the colour
    # Seconds on the clock from the fit's start to its result: its CPU seconds, plus loading, waiting behind another
    # voice's fit, and waiting while the server renders speech (synth.yielding) or keeps the CPU busy (it is niced).
    wall_s: float | None = None


FitObserver = Callable[[FitOutcome], None]


class PendingFit(NamedTuple):
    task: asyncio.Task[None]
    started: float  # time.monotonic() at its start: its time on the clock and its age in /metrics count from it


@dataclasses.dataclass(frozen=True)
class Baselines:
    """Judge cosines for 'the same person recorded twice' and 'two strangers' (see calibrate.py)."""

    same_speaker: float
    different_speaker: float

    @classmethod
    def load(cls, path: Path | None = None) -> Baselines:
        data = json.loads((path or Path(__file__).with_name("baselines.json")).read_text())
        return cls(float(data["same_speaker"]), float(data["different_speaker"]))

    def similarity(self, raw: float, of: str) -> dict[str, Any]:
        scaled = (raw - self.different_speaker) / (self.same_speaker - self.different_speaker)
        return {
            "score": round(float(np.clip(scaled, 0.0, 1.0)), 3),
            "raw": round(float(raw), 4),
            "of": of,  # what was scored: "stock:NAME" while the fit runs, then "voice:OWNER"
            "same_speaker": self.same_speaker,
            "different_speaker": self.different_speaker,
        }


def wire_similarity(similarity: dict[str, Any] | None) -> dict[str, Any]:
    """`similarity` as the protocol has it (the 0..1 score) plus `similarity_detail` (raw cosine, baselines)."""
    if similarity is None:
        return {"similarity": None, "similarity_detail": None}
    return {"similarity": similarity["score"], "similarity_detail": similarity}


@dataclasses.dataclass(frozen=True)
class EnrollResult:
    voice_id: str
    version: int
    quality: dict[str, Any]
    similarity: dict[str, Any]
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "version": self.version,
            "status": self.status,
            "quality": self.quality,
            **wire_similarity(self.similarity),
        }


class EnrollmentService:
    def __init__(
        self,
        store: VoiceStore,
        workers: EnrollmentWorkers,
        *,
        limits: GateLimits | None = None,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        fit_cpu_budget_s: float = FIT_CPU_BUDGET_S,
        fit_per_layer_timbre: bool = True,
        baselines: Baselines | None = None,
        forget_voice: OwnerHook | None = None,
        purge_cached_audio: PurgeHook | None = None,
        consent_info: ConsentInfo | None = None,
        on_voice_ready: VoiceReadyHook | None = None,
        on_fit_finished: FitObserver | None = None,
    ) -> None:
        self.store = store
        self.workers = workers
        self.limits = limits or GateLimits()
        self.max_upload_bytes = max_upload_bytes
        self.fit_cpu_budget_s = fit_cpu_budget_s
        self.fit_per_layer_timbre = fit_per_layer_timbre  # off: the style alone, cleaner and less like the speaker
        self.baselines = baselines or Baselines.load()
        # Hooks the policy layer, the phrase cache and the gateway set.
        self.forget_voice = forget_voice
        self.purge_cached_audio = purge_cached_audio
        self.consent_info = consent_info
        self.on_voice_ready = on_voice_ready
        self.on_fit_finished = on_fit_finished  # metrics
        self._locks: dict[str, asyncio.Lock] = {}
        self._voices: dict[str, Voice] = {}
        self._progress: dict[str, tuple[float, str]] = {}
        self._fits: dict[str, PendingFit] = {}

    # -- enrollment ---------------------------------------------------------------------------

    def check_upload(self, size: int, content_type: str) -> None:
        """Refuse a wrong type or an oversized body before reading it all."""
        media_type = content_type.split(";")[0].strip().lower()
        if media_type not in ACCEPTED_CONTENT_TYPES:
            raise UnsupportedAudioType(
                f"Recordings must be audio/wav, audio/ogg, audio/webm or audio/mpeg, not {media_type or 'untyped'}."
            )
        if size > self.max_upload_bytes:
            raise UploadTooLarge(
                f"The file is larger than {self.max_upload_bytes // (1024 * 1024)} MB; "
                "send at most 5 minutes, or a compressed format (Ogg/Opus, WebM, MP3)."
            )

    async def enroll(
        self,
        owner: str,
        data: bytes,
        content_type: str,
        *,
        language_hint: str = "unknown",
        progress: Callable[[float, str], None] | None = None,
    ) -> EnrollResult:
        """Gate and enroll a recording; raises RecordingRejected, UploadTooLarge, UnsupportedAudioType
        or AudioDecodeError. The recording itself is never stored."""
        self.check_upload(len(data), content_type)
        analysis = await self.workers.analyse(data, self.limits, language_hint, progress)
        del data
        if not analysis.accepted:
            raise RecordingRejected(analysis.quality)
        from synth.enroll.render import stock_packs

        start_pack = stock_packs()[analysis.start_stock]
        similarity = self.baselines.similarity(analysis.start_similarity_raw, f"stock:{analysis.start_stock}")
        async with self._lock(owner):
            previous = await asyncio.to_thread(self._load_quietly, owner)
            version = _next_version(previous.version if previous else 0)
            record = VoiceRecord(
                owner=owner,
                version=version,
                meta={
                    "status": "fitting",
                    "quality": analysis.quality,
                    "similarity": similarity,
                    "created_at": _now_iso(),
                    "language_hint": language_hint,
                    "start_stock": analysis.start_stock,
                },
                arrays={
                    "pack": start_pack,
                    "judge_print": analysis.judge_print,
                    **_prefixed(analysis.target),
                },
            )
            await asyncio.to_thread(self.store.save, record)
            self._voices[owner] = _voice_of(record)
            self._progress[owner] = (0.0, "waiting for the voice fit")
            if previous is not None and self.purge_cached_audio is not None:
                await self.purge_cached_audio(owner, version)
            self._start_fit(record)
        return EnrollResult(owner, version, analysis.quality, similarity, "fitting")

    def _start_fit(self, record: VoiceRecord) -> None:
        old = self._fits.pop(record.owner, None)
        if old is not None:
            old.task.cancel()  # its result would belong to the replaced voice; the fit process stops it (jobs.py)
        started = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._fit(record, started), name=f"voice-fit:{record.owner}")
        task.add_done_callback(_report_crash)
        self._fits[record.owner] = PendingFit(task, started)

    async def _fit(self, record: VoiceRecord, started: float) -> None:
        owner = record.owner

        def progress(fraction: float, stage: str) -> None:
            pending = self._fits.get(owner)
            if pending is not None and pending.task is task:
                self._progress[owner] = (fraction, stage)

        task = asyncio.current_task()
        try:
            result = await self.workers.fit(
                _unprefixed(record.arrays),
                record.meta["language_hint"],
                record.arrays["pack"],
                record.arrays["judge_print"],
                self.fit_cpu_budget_s,
                progress,
                per_layer_timbre=self.fit_per_layer_timbre,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stock voice stays usable; the owner sees why the fit stopped
            log.exception("voice fit failed for one voice")
            error = f"The voice fit failed ({type(exc).__name__}); try enrolling again."
            await self._finish_fit(record, None, error, time.monotonic() - started)
            return
        await self._finish_fit(record, result, None, time.monotonic() - started)

    async def _finish_fit(self, record: VoiceRecord, result: Any, error: str | None, wall_s: float) -> None:
        owner = record.owner
        async with self._lock(owner):
            current = await asyncio.to_thread(self._load_quietly, owner)
            if current is None or current.version != record.version:
                log.info("voice fit finished for a voice since deleted or re-enrolled; result dropped")
                return
            meta = dict(current.meta)
            arrays = dict(current.arrays)
            version = current.version
            if result is None:
                meta.update(status="failed", error=error)
            else:
                arrays["pack"] = result.pack
                arrays.pop("layers", None)
                if result.layers is not None:
                    arrays["layers"] = result.layers
                arrays.pop("colour", None)
                if result.colour is not None:
                    arrays["colour"] = result.colour
                version = _next_version(current.version)  # new parameters: cached audio of the old ones is stale
                meta.update(
                    status="ready",
                    denoise=result.denoise,
                    fit_method=result.method,
                    similarity=self.baselines.similarity(result.similarity_raw, f"voice:{owner}"),
                    fitted_at=_now_iso(),
                )
            updated = VoiceRecord(owner, version, meta, arrays)
            await asyncio.to_thread(self.store.save, updated)
            self._voices[owner] = _voice_of(updated)
            self._progress.pop(owner, None)
            self._fits.pop(owner, None)
            if version != record.version and self.purge_cached_audio is not None:
                await self.purge_cached_audio(owner, version)  # never served again: free the memory
        self._report_fit(result, meta, wall_s)
        if result is not None and self.on_voice_ready is not None:
            await self.on_voice_ready(
                owner, {"voice_id": owner, "version": version, **wire_similarity(meta["similarity"])}
            )

    def _report_fit(self, result: Any, meta: dict[str, Any], wall_s: float) -> None:
        if result is None:
            outcome = FitOutcome(ready=False)
        else:
            outcome = FitOutcome(
                True, result.cpu_s, meta["similarity"]["score"], colour_share=result.colour_share, wall_s=wall_s
            )
            colour = "skipped, no time" if outcome.colour_share is None else f"{outcome.colour_share:.0%} kept"
            log.info(
                "voice fit ready in %.0f CPU-s, %.0f s on the clock (%s): similarity %.2f, colour %s, "
                "noise suppressor %s of the output",
                outcome.cpu_s, wall_s, result.method, outcome.similarity, colour, f"{result.denoise:.0%}",
            )
        if self.on_fit_finished is not None:
            self.on_fit_finished(outcome)

    async def resume_pending(self) -> int:
        """At start-up: restart the fit of every voice whose fit had not finished."""
        records = await asyncio.to_thread(self.store.records)
        pending = [r for r in records if r.meta.get("status") == "fitting"]
        for record in pending:
            self._progress[record.owner] = (0.0, "waiting for the voice fit")
            self._start_fit(record)
        return len(pending)

    def fit_backlog(self) -> tuple[int, float]:
        """Voices whose fit has not finished (running, or queued behind another's), and the oldest one's seconds
        on the clock since its fit was started (0 when none). A fit resumed at start-up counts from the restart."""
        now = time.monotonic()
        ages = [now - pending.started for pending in list(self._fits.values())]
        return len(ages), max(ages, default=0.0)

    async def wait_for_fit(self, owner: str) -> None:
        pending = self._fits.get(owner)
        if pending is not None:
            await asyncio.shield(pending.task)

    # -- status and deletion ------------------------------------------------------------------

    async def status(self, owner: str) -> dict[str, Any]:
        record = await asyncio.to_thread(self._load_quietly, owner)
        consent = await self.consent_info(owner) if self.consent_info is not None else {}
        if record is None:
            return {
                "enrolled": False,
                "status": "none",
                "progress": None,
                "consent": bool(consent.get("consent", False)),
                "grants": list(consent.get("grants", [])),
                "quota": consent.get("quota"),
                "quality": None,
                **wire_similarity(None),
                "created_at": None,
            }
        meta = record.meta
        fraction, stage = self._progress.get(owner, (1.0, meta["status"]))
        out = {
            "enrolled": True,
            "status": meta["status"],
            "progress": {"fraction": round(fraction, 3), "stage": stage},
            "consent": bool(consent.get("consent", False)),
            "grants": list(consent.get("grants", [])),
            "quota": consent.get("quota"),
            "quality": meta["quality"],
            **wire_similarity(meta["similarity"]),
            "created_at": meta["created_at"],
            "version": record.version,
        }
        if meta.get("error"):
            out["error"] = meta["error"]
        return out

    async def delete(self, owner: str) -> bool:
        """Erase the voice, its grants and every cached audio made from it. True if there was a voice."""
        async with self._lock(owner):
            pending = self._fits.pop(owner, None)
            if pending is not None:
                pending.task.cancel()
            existing = await asyncio.to_thread(self._load_quietly, owner)
            existed = await asyncio.to_thread(self.store.delete, owner)
            self._voices.pop(owner, None)
            self._progress.pop(owner, None)
        if self.forget_voice is not None:
            await self.forget_voice(owner)
        if self.purge_cached_audio is not None:
            # Every version so far, including one still being spoken when it was deleted: a re-enrolled voice
            # gets a later version (`_next_version`), so its audio is cached again.
            await self.purge_cached_audio(owner, _next_version(existing.version if existing else 0))
        return existed

    # -- the voice directory the policy layer and the scheduler use ---------------------------

    async def has_voice(self, owner: str) -> bool:
        return owner in self._voices or await asyncio.to_thread(self.store.exists, owner)

    async def voice_for(self, owner: str) -> Voice | None:
        voice = self._voices.get(owner)
        if voice is not None:
            return voice
        try:
            record = await asyncio.to_thread(self.store.load, owner)
        except VoiceKeyError as exc:
            # Fail closed: a voice we cannot decrypt is never spoken.
            raise VoxroomError(ErrorCode.INTERNAL, "This voice's data cannot be opened on this server.") from exc
        if record is None:
            return None
        voice = _voice_of(record)
        self._voices[owner] = voice
        return voice

    async def close(self) -> None:
        """Stop waiting for fits (their voices resume at the next start); the workers' owner closes them."""
        if self._fits:
            log.info("stopping %d voice fit(s); they resume at the next start", len(self._fits))
        for pending in list(self._fits.values()):
            pending.task.cancel()
        self._fits.clear()

    def _lock(self, owner: str) -> asyncio.Lock:
        return self._locks.setdefault(owner, asyncio.Lock())

    def _load_quietly(self, owner: str) -> VoiceRecord | None:
        try:
            return self.store.load(owner)
        except VoiceKeyError:
            log.warning("a stored voice cannot be opened with the deployment key; treating it as replaceable")
            return None


def _report_crash(task: asyncio.Task[None]) -> None:
    """A fit task that dies of anything but cancellation says so (its voice stays on the stock pack)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s died", task.get_name(), exc_info=task.exception())


def _voice_of(record: VoiceRecord) -> Voice:
    return Voice(
        id=record.owner,
        engine=ENGINE,
        params=record.arrays["pack"],
        colour=voice_colour.check_taps(record.arrays["colour"]) if "colour" in record.arrays else None,
        layers=check_layers(record.arrays["layers"]) if "layers" in record.arrays else None,
        denoise=_denoise_share(record.meta.get("denoise")),
        version=record.version,
        owner=record.owner,
    )


def _denoise_share(value: Any) -> float:
    """The stored share of suppressed output; anything but a number from 0 to 1 (or none, before it existed) is 0."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
        return float(value)
    return 0.0


def _prefixed(target: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    return {f"target.{k}": v for k, v in (target or {}).items()}


def _unprefixed(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k.removeprefix("target."): v for k, v in arrays.items() if k.startswith("target.")}


def _next_version(previous: int) -> int:
    """Monotonic across deletions too (milliseconds), so a cache key of a deleted voice is never reused."""
    return max(previous + 1, time.time_ns() // 1_000_000)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
