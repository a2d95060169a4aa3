"""HTTP handlers for the voice owner's controls: consent on or off, grants given and revoked.

The gateway's auth middleware has already put the verified `Account` in
`request[ACCOUNT_KEY]`. Bodies are checked strictly: anything unexpected is a 400
with a message saying what to fix, never a 500.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.http import ACCOUNT_KEY
from policy.service import PolicyService, check_account_id
from voxroom.errors import HTTP_STATUS, ErrorCode, VoxroomError
from voxroom.identity import Account

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: VoxroomError) -> web.Response:
    body: dict[str, Any] = {"code": str(error.code), "message": error.message, **error.details}
    if error.retry_after_s is not None:
        body["retry_after_s"] = error.retry_after_s
    return web.json_response({"error": body}, status=HTTP_STATUS[error.code])


def _bad(message: str) -> VoxroomError:
    return VoxroomError(ErrorCode.BAD_REQUEST, message)


async def read_json_object(request: web.Request, allowed: set[str], required: set[str]) -> dict[str, Any]:
    """The body as a JSON object holding only `allowed` fields and every `required` one."""
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad("The body must be a JSON object encoded as UTF-8.") from exc
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _bad(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.")
    missing = sorted(required - set(body))
    if missing:
        raise _bad(f"Missing field(s): {', '.join(missing)}.")
    return body


def parse_expiry(value: object) -> dt.datetime | None:
    """`expires_at`: null, or an ISO 8601 date-time with a time zone."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad("expires_at must be an ISO 8601 date-time string such as 2026-12-31T18:00:00Z, or null.")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(f"expires_at {value!r} is not an ISO 8601 date-time such as 2026-12-31T18:00:00Z.") from exc
    if moment.tzinfo is None:
        raise _bad("expires_at needs a time zone, for example 2026-12-31T18:00:00Z.")
    return moment


def _account(request: web.Request) -> Account:
    account = request.get(ACCOUNT_KEY)
    if not isinstance(account, Account):
        raise web.HTTPUnauthorized()
    return account


def _refusals_as_json(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except VoxroomError as error:
            return error_response(error)

    return wrapped


def policy_routes(policy: PolicyService) -> list[web.RouteDef]:
    async def put_consent(request: web.Request) -> web.StreamResponse:
        account = _account(request)
        body = await read_json_object(request, {"enabled"}, {"enabled"})
        if not isinstance(body["enabled"], bool):
            raise _bad("enabled must be true or false.")
        await policy.set_consent(account.id, body["enabled"])
        return web.json_response({"consent": body["enabled"]})

    async def post_grant(request: web.Request) -> web.StreamResponse:
        account = _account(request)
        body = await read_json_object(request, {"grantee", "expires_at"}, {"grantee"})
        grantee = check_account_id(body["grantee"], "grantee")
        grant = await policy.add_grant(account.id, grantee, parse_expiry(body.get("expires_at")))
        return web.json_response(grant.to_json(), status=201)

    async def delete_grant(request: web.Request) -> web.StreamResponse:
        account = _account(request)
        grantee = request.match_info["grantee"]
        revoked = await policy.revoke_grant(account.id, grantee)
        return web.json_response({"grantee": grantee, "revoked": revoked})

    return [
        web.put("/v1/voices/me/consent", _refusals_as_json(put_consent)),
        web.post("/v1/voices/me/grants", _refusals_as_json(post_grant)),
        web.delete("/v1/voices/me/grants/{grantee}", _refusals_as_json(delete_grant)),
    ]
