"""The voice owner's HTTP controls, through a real aiohttp server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.http import ACCOUNT_KEY
from gateway.http_policy import policy_routes
from policy.clock import ManualClock
from policy.config import PolicyConfig
from policy.memory_store import MemoryPolicyStore
from policy.service import PolicyService
from policy.voice_directory import StaticVoiceDirectory
from voxroom.identity import Account


@web.middleware
async def fake_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """Stands in for the gateway's token check: the account named in a header."""
    name = request.headers.get("X-Account")
    if not name:
        raise web.HTTPUnauthorized()
    request[ACCOUNT_KEY] = Account(name)
    return await handler(request)


@pytest.fixture
def policy(clock: ManualClock, tmp_path: Path) -> PolicyService:
    config = PolicyConfig(clock=clock, audit_path=tmp_path / "audit.jsonl")
    return PolicyService(config, MemoryPolicyStore(), StaticVoiceDirectory({"alice"}))


@pytest.fixture
async def client(policy: PolicyService) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[fake_auth])
    app.add_routes(policy_routes(policy))
    async with TestClient(TestServer(app)) as client:
        yield client


def as_(account: str) -> dict[str, str]:
    return {"X-Account": account}


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    return dict(body["error"])


async def test_consent_switches_on_and_off(client: TestClient, policy: PolicyService) -> None:  # type: ignore[type-arg]
    response = await client.put("/v1/voices/me/consent", json={"enabled": True}, headers=as_("alice"))
    assert response.status == 200
    assert await response.json() == {"consent": True}
    assert await policy.consent("alice") is True
    response = await client.put("/v1/voices/me/consent", json={"enabled": False}, headers=as_("alice"))
    assert await response.json() == {"consent": False}
    assert await policy.consent("alice") is False


async def test_consent_needs_an_enrolled_voice(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.put("/v1/voices/me/consent", json={"enabled": True}, headers=as_("bob"))
    error = await error_of(response, 404)
    assert error["code"] == "no_voice"
    assert "record one" in error["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "JSON object"),
        (b"\xff\xfe", "JSON object"),
        (b"[true]", "JSON object"),
        (b'{"enabled": "yes"}', "true or false"),
        (b'{"enabled": 1}', "true or false"),
        (b"{}", "Missing field(s): enabled"),
        (b'{"enabled": true, "also": 1}', "Unknown field(s): also"),
    ],
)
async def test_bad_consent_bodies_are_400(client: TestClient, body: bytes, needle: str) -> None:  # type: ignore[type-arg]
    response = await client.put("/v1/voices/me/consent", data=body, headers=as_("alice"))
    error = await error_of(response, 400)
    assert error["code"] == "bad_request"
    assert needle in error["message"]


async def test_grants_are_given_and_revoked(client: TestClient, policy: PolicyService) -> None:  # type: ignore[type-arg]
    response = await client.post("/v1/voices/me/grants", json={"grantee": "bot-7"}, headers=as_("alice"))
    assert response.status == 201
    body = await response.json()
    assert body["grantee"] == "bot-7" and body["expires_at"] is None and body["grant_id"]
    response = await client.post(
        "/v1/voices/me/grants",
        json={"grantee": "bot-8", "expires_at": "2026-03-15T20:00:00+08:00"},
        headers=as_("alice"),
    )
    assert (await response.json())["expires_at"] == "2026-03-15T12:00:00Z"
    assert [g.grantee for g in await policy.grants("alice")] == ["bot-7", "bot-8"]

    response = await client.delete("/v1/voices/me/grants/bot-7", headers=as_("alice"))
    assert await response.json() == {"grantee": "bot-7", "revoked": True}
    response = await client.delete("/v1/voices/me/grants/bot-7", headers=as_("alice"))
    assert await response.json() == {"grantee": "bot-7", "revoked": False}
    assert [g.grantee for g in await policy.grants("alice")] == ["bot-8"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"grantee": "alice"}, "yourself"),
        ({"grantee": "bot-7", "expires_at": "2026-03-14T11:59:59Z"}, "in the past"),
        ({"grantee": "bot-7", "expires_at": "next tuesday"}, "not an ISO 8601 date-time"),
        ({"grantee": "bot-7", "expires_at": "2026-04-01T00:00:00"}, "needs a time zone"),
        ({"grantee": "bot-7", "expires_at": 1773489600}, "ISO 8601 date-time string"),
        ({"grantee": 7}, "non-empty account id"),
        ({"grantee": ""}, "non-empty account id"),
        ({"grantee": "bot 7"}, "without spaces"),
        ({"expires_at": None}, "Missing field(s): grantee"),
        ({"grantee": "bot-7", "until": "soon"}, "Unknown field(s): until"),
    ],
)
async def test_bad_grant_bodies_are_400(client: TestClient, body: Any, needle: str) -> None:  # type: ignore[type-arg]
    response = await client.post("/v1/voices/me/grants", json=body, headers=as_("alice"))
    error = await error_of(response, 400)
    assert error["code"] == "bad_request"
    assert needle in error["message"]


async def test_a_grant_needs_an_enrolled_voice(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.post("/v1/voices/me/grants", json={"grantee": "bot-7"}, headers=as_("bob"))
    assert (await error_of(response, 404))["code"] == "no_voice"


async def test_the_account_comes_from_the_auth_middleware(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.put("/v1/voices/me/consent", json={"enabled": True})
    assert response.status == 401
