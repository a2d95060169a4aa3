"""The composition root: build every part from the settings, wire them, serve on one port."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.auth import TokenAuthority
from gateway.context import ServerContext
from gateway.http import auth_middleware, base_routes, demo_routes, error_middleware
from gateway.http_demo import demo_routes_for
from gateway.http_detect import detect_routes
from gateway.http_policy import policy_routes
from gateway.http_voices import voice_routes
from gateway.rtc import install_rtc
from gateway.ws import CTX_KEY, websocket_handler
from policy.audit import derive_audit_key
from policy.config import PolicyConfig, parse_account_limits, parse_blocklist_paths, parse_rate_limit
from policy.service import PolicyService
from policy.store import create_store
from policy.voice_directory import VoiceDirectory
from rooms.hub import RoomHub
from synth.cache import create_phrase_cache
from synth.calibration import calibration_clauses
from synth.engines.registry import create_engine
from synth.enroll.jobs import EnrollmentWorkers
from synth.enroll.service import EnrollmentService
from synth.scheduler import Scheduler
from synth.speech import Speaker
from synth.voices import VoiceResolver
from synth.voicestore.keys import load_or_create_deployment_key
from synth.voicestore.store import VoiceStore
from synth.watermark.switch import watermark_chunk_filter
from voxroom.data_dir import DataDirInUse, hold_as_server
from voxroom.metrics import Metrics
from voxroom.settings import Settings, auto_on_off

log = logging.getLogger("voxroom")

WEB_DEMO_DIR = Path(__file__).resolve().parent.parent / "web-demo"


def build_policy(settings: Settings, voices: VoiceDirectory) -> PolicyService:
    try:
        config = PolicyConfig(
            daily_limit=settings.daily_limit,
            per_account_limits=parse_account_limits(settings.daily_limit_overrides),
            timezone=settings.quota_timezone,
            account_rate=parse_rate_limit(settings.rate_account),
            connection_rate=parse_rate_limit(settings.rate_connection),
            blocklist_paths=parse_blocklist_paths(settings.blocklist),
            audit_path=settings.data_dir / "audit.jsonl",
            audit_key=derive_audit_key(settings.secret),
        )
    except ValueError as exc:
        raise SystemExit(f"voxroom: bad policy setting: {exc}") from exc
    store = create_store(settings.redis_url or None, settings.redis_prefix)
    return PolicyService(config, store, voices)


def engine_options(settings: Settings) -> dict[str, Any]:
    """The engine's constructor options, from the settings that concern it."""
    if settings.engine == "kokoro":
        return {
            "threads": settings.engine_threads,
            "spin": settings.engine_spin,
            "int8_gemm": auto_on_off(settings.engine_int8_gemm),
            # Workers share the cores: a clause rendered beside another runs on one thread (synth.engines.kokoro).
            "narrow_when_shared": settings.engine_workers > 1,
        }
    if settings.engine != "gpt-sovits":
        return {"threads": settings.engine_threads}
    if settings.models_dir is None:
        raise SystemExit("voxroom: --engine gpt-sovits needs --models DIR (see `voxroom models pull gpt-sovits-v2`)")
    from synth.engines.gptsovits.engine import GptSovitsOptions
    from synth.engines.gptsovits.sampling import SamplingParams

    bert = auto_on_off(settings.gptsovits_bert)
    sampling = SamplingParams(max_tokens=settings.gptsovits_max_tokens)
    return {
        "models_dir": settings.models_dir,
        "runtime": settings.gptsovits_runtime,
        "threads": settings.engine_threads or 1,
        "fp16": settings.gptsovits_fp16,
        "bert": bert,
        "options": GptSovitsOptions(max_batch=settings.gptsovits_max_batch, sampling=sampling),
    }


def build_enrollment(settings: Settings) -> EnrollmentService:
    store = VoiceStore(
        settings.data_dir / "voices", load_or_create_deployment_key(settings.data_dir, settings.voice_key)
    )
    return EnrollmentService(
        store,
        EnrollmentWorkers(niceness=settings.enroll_nice, yield_to_synthesis=settings.fit_yield),
        fit_cpu_budget_s=settings.fit_cpu_s,
        fit_per_layer_timbre=settings.fit_layers,
        max_upload_bytes=settings.enroll_max_mb * 1024 * 1024,
    )


def wire_enrollment(ctx: ServerContext, enrollment: EnrollmentService) -> None:
    """Deleting a voice reaches policy and the cache; a finished fit reaches the owner's connections."""
    ctx.voices.enrolled_voice = enrollment.voice_for
    ctx.voices.consent = ctx.policy.consent
    enrollment.forget_voice = ctx.policy.forget_voice
    enrollment.consent_info = ctx.policy.consent_info

    async def purge_cached_audio(owner: str, below_version: int) -> None:
        await ctx.cache.forget_voice(owner, below_version)

    async def voice_ready(owner: str, info: dict[str, Any]) -> None:
        ctx.notify_account(owner, {"type": "voice_ready", **info})

    enrollment.purge_cached_audio = purge_cached_audio
    enrollment.on_voice_ready = voice_ready
    enrollment.on_fit_finished = ctx.metrics.record_voice_fit


def build_context(settings: Settings) -> ServerContext:
    metrics = Metrics()
    enrollment = build_enrollment(settings)
    metrics.fit_pauses.render_count = enrollment.workers.render_count
    metrics.fit_backlog.read = enrollment.fit_backlog
    engine = create_engine(settings.engine, **engine_options(settings))
    # Marking runs per clause off the event loop, before Opus; one watermarker is shared by threads.
    chunk_filter, watermarker = watermark_chunk_filter(settings.watermark, on_embed=metrics.record_embed)
    scheduler = Scheduler(
        engine,
        metrics,
        workers=settings.engine_workers,
        max_active=settings.max_active_utterances,
        max_first_audio_s=settings.max_first_audio_s,
        render_count=enrollment.workers.render_count,
    )
    ctx = ServerContext(
        settings=settings,
        auth=TokenAuthority(settings.secret),
        metrics=metrics,
        rooms=RoomHub(),
        engine=engine,
        scheduler=scheduler,
        speaker=Speaker(engine, scheduler, chunk_filter=chunk_filter),
        voices=VoiceResolver(engine, settings.default_voice),
        policy=build_policy(settings, enrollment),
        enrollment=enrollment,
        watermarker=watermarker,
        cache=create_phrase_cache(
            settings.redis_url, settings.redis_prefix, metrics, max_bytes=settings.phrase_cache_mb * 1024 * 1024
        ),
    )
    wire_enrollment(ctx, enrollment)
    return ctx


def create_app(ctx: ServerContext) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=64 * 1024 * 1024)
    app[CTX_KEY] = ctx
    app.add_routes([web.get("/v1/ws", websocket_handler), *base_routes(), *demo_routes(WEB_DEMO_DIR)])
    app.add_routes(policy_routes(ctx.policy))
    app.add_routes(detect_routes())
    app.add_routes(voice_routes(ctx.enrollment))
    app.add_routes(demo_routes_for(ctx))
    install_rtc(app, ctx)

    async def on_startup(app: web.Application) -> None:
        started = asyncio.get_running_loop().time()
        await asyncio.to_thread(ctx.engine.warm_up)
        await ctx.scheduler.calibrate(calibration_clauses(ctx.engine))
        await ctx.scheduler.start()
        resumed = await ctx.enrollment.resume_pending()
        if resumed:
            log.info("resumed %d voice fit(s) left unfinished by the last run", resumed)
        log.info(
            "engine %s ready in %.1f s (%d worker(s))",
            ctx.engine.name,
            asyncio.get_running_loop().time() - started,
            ctx.scheduler.workers,
        )

    async def on_shutdown(app: web.Application) -> None:
        for task in list(ctx.tasks):
            task.cancel()
        await asyncio.gather(*ctx.tasks, return_exceptions=True)
        await ctx.scheduler.stop()
        await ctx.enrollment.close()
        # The fit and analysis processes are the server's to end. Left running, a fit went on to its end (minutes
        # on the default budget) while the interpreter's exit waited for it; its voice resumes at the next start.
        await asyncio.to_thread(ctx.enrollment.workers.close)
        await ctx.policy.close()
        await ctx.cache.close()
        ctx.engine.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.info(
        "voxroom serving on http://%s:%d (engine %s, state %s, data dir %s)",
        settings.host,
        settings.port,
        settings.engine,
        "embedded" if settings.embedded else "redis",
        settings.data_dir,
    )
    try:
        claim = hold_as_server(settings.data_dir)  # shared with other servers, never with `voxroom enroll`
    except DataDirInUse as exc:
        raise SystemExit(f"error: {exc}") from None
    with claim:
        app = create_app(build_context(settings))
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
