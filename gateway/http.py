"""The HTTP side: health, metrics, stock voices, the demo page, and bearer-token auth for /v1/."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from gateway.auth import AuthError, bearer_token
from gateway.ws import CTX_KEY
from voxroom.errors import HTTP_STATUS, ErrorCode, VoxroomError
from voxroom.identity import Account

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Paths under /v1/ that authenticate themselves (the WebSocket closes with 4401 instead of 401).
_SELF_AUTHENTICATED = {"/v1/ws"}
# Where the auth middleware puts the verified account for the /v1/ handlers (a typed key, not a string).
ACCOUNT_KEY = web.RequestKey("account", Account)


READ_CHUNK = 64 * 1024


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole request body, or None once it passes `limit` bytes (reading stops there).

    Read in chunks until the end: one `content.read(n)` returns only what has arrived so far, which
    on a busy server can be the first part of an upload.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(code: ErrorCode, message: str | None = None, *, status: int | None = None) -> web.Response:
    exc = VoxroomError(code, message)
    body = {"error": {"code": str(exc.code), "message": exc.message}}
    return web.json_response(body, status=status or HTTP_STATUS[exc.code])


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/") and request.path not in _SELF_AUTHENTICATED:
        ctx = request.app[CTX_KEY]
        try:
            request[ACCOUNT_KEY] = ctx.auth.verify(bearer_token(request.headers.get("Authorization")))
        except AuthError as exc:
            ctx.metrics.auth_failures.inc()
            return web.json_response(
                {"error": {"code": "unauthorized", "message": f"A valid bearer token is required ({exc})."}},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals become their HTTP status with a JSON body; anything unexpected a logged 500."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except VoxroomError as exc:
        body: dict[str, object] = {"code": str(exc.code), "message": exc.message}
        if exc.retry_after_s is not None:
            body["retry_after_s"] = exc.retry_after_s
        return web.json_response({"error": body | exc.details}, status=HTTP_STATUS[exc.code])
    except json.JSONDecodeError:
        return error_response(ErrorCode.BAD_REQUEST, "The body is not valid JSON.")
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(ErrorCode.INTERNAL)


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    return web.json_response({"status": "ok", "engine": ctx.engine.name, "active_utterances": ctx.scheduler.active})


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    return web.Response(body=ctx.metrics.render(), content_type="text/plain", charset="utf-8")


async def stock_voices(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    return web.json_response(
        [{"name": f"stock:{v.name}", "languages": list(v.languages)} for v in ctx.engine.stock_voices()]
    )


def demo_routes(web_demo_dir: Path) -> list[web.AbstractRouteDef]:
    index = web_demo_dir / "index.html"

    async def page(request: web.Request) -> web.StreamResponse:
        if not index.exists():
            return web.Response(text="Voxroom is running. The demo page is not installed.", content_type="text/plain")
        return web.FileResponse(index)

    routes: list[web.AbstractRouteDef] = [web.get("/", page)]
    if web_demo_dir.is_dir():
        routes.append(web.static("/web-demo", web_demo_dir))
    return routes


def base_routes() -> list[web.RouteDef]:
    return [
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.get("/v1/voices/stock", stock_voices),
    ]
