"""The demo page's own endpoints: what the page should offer, and short-lived tokens in demo mode.

`GET /demo/config` tells the page whether it may sign people in by name.
`POST /demo/token {"name": "alice"}` mints a token for that name, and exists only
when the server runs with `--demo` (VOXROOM_DEMO): anyone who can reach the page
can then speak as any name, which is what a local demo wants and nothing else does.
Both live outside /v1/ because they are what a visitor calls before having a token.
"""

from __future__ import annotations

import json
import re
import time

from aiohttp import web

from gateway.context import ServerContext
from voxroom.errors import ErrorCode, VoxroomError

DEMO_TOKEN_TTL_S = 2 * 3600
MAX_NAME_CHARS = 32
# Letters of any script, digits, and . _ - ; spaces become '-' so the name is a valid account id.
_NAME = re.compile(r"[\w.\-]+")


def demo_account_id(name: object) -> str:
    """The account id for a display name, or a bad_request saying what a name may contain."""
    if not isinstance(name, str) or not name.strip():
        raise VoxroomError(ErrorCode.BAD_REQUEST, "Type a display name to sign in.")
    account = re.sub(r"\s+", "-", name.strip())
    if len(account) > MAX_NAME_CHARS or not _NAME.fullmatch(account):
        raise VoxroomError(
            ErrorCode.BAD_REQUEST,
            f"A display name is 1 to {MAX_NAME_CHARS} letters, digits, spaces, dots, dashes or underscores.",
        )
    return account


def demo_routes_for(ctx: ServerContext) -> list[web.RouteDef]:
    settings = ctx.settings

    async def config(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "demo": settings.demo,
                "max_text_chars": settings.max_text_chars,
                "daily_limit": settings.daily_limit,
                "default_voice": settings.default_voice,
            }
        )

    async def token(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise VoxroomError(ErrorCode.BAD_REQUEST, 'The body must be JSON: {"name": "your name"}.') from None
        if not isinstance(body, dict) or set(body) != {"name"}:
            raise VoxroomError(ErrorCode.BAD_REQUEST, 'The body must be exactly {"name": "your name"}.')
        account = demo_account_id(body["name"])
        issued = time.time()
        minted = ctx.auth.mint(account, kind="user", ttl_s=DEMO_TOKEN_TTL_S, now=issued)
        return web.json_response({"token": minted, "account": account, "expires_at": int(issued) + DEMO_TOKEN_TTL_S})

    routes = [web.get("/demo/config", config)]
    if settings.demo:
        routes.append(web.post("/demo/token", token))
    return routes
