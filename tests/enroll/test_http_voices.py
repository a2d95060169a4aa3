"""POST/GET/DELETE /v1/voices over real HTTP (aiohttp test server), with real workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.http import ACCOUNT_KEY
from gateway.http_voices import voice_routes
from synth.enroll import quality
from synth.enroll.jobs import EnrollmentWorkers
from synth.enroll.service import EnrollmentService
from synth.voicestore import VoiceStore, load_or_create_deployment_key
from tests.enroll.conftest import voice_path, wav_bytes
from voxroom.identity import Account

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVICE = web.AppKey("service", EnrollmentService)
FORGOTTEN = web.AppKey("forgotten", list)


@web.middleware
async def header_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stands in for the gateway's token check: the account named in a header."""
    name = request.headers.get("X-Account")
    if not name:
        return web.json_response({"error": {"code": "unauthorized"}}, status=401)
    request[ACCOUNT_KEY] = Account(id=name, kind="bot" if name.startswith("bot-") else "user")
    return await handler(request)


@pytest.fixture
async def client(tmp_path: Path, workers: EnrollmentWorkers) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    store = VoiceStore(tmp_path / "voices", load_or_create_deployment_key(tmp_path))
    forgotten: list[str] = []

    async def forget_voice(owner: str) -> None:
        forgotten.append(owner)

    async def consent_info(owner: str) -> dict[str, object]:
        return {"consent": owner == "alice", "grants": [{"grantee": "bot-7"}] if owner == "alice" else []}

    service = EnrollmentService(
        store, workers, fit_cpu_budget_s=1.0, forget_voice=forget_voice, consent_info=consent_info
    )
    app = web.Application(middlewares=[header_auth])
    app.add_routes(voice_routes(service))
    app[SERVICE] = service
    app[FORGOTTEN] = forgotten
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await service.close()


def as_user(name: str, content_type: str | None = None) -> dict[str, str]:
    headers = {"X-Account": name}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


async def test_enroll_status_delete(client: TestClient) -> None:  # type: ignore[type-arg]
    wav = voice_path("en_3005_enroll.wav").read_bytes()
    response = await client.post("/v1/voices", data=wav, headers=as_user("alice", "audio/wav"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["voice_id"] == "alice"
    assert body["quality"]["verdict"] == "ok" and body["quality"]["advice"] == []
    assert 0 <= body["similarity"] <= 1
    assert body["similarity_detail"]["score"] == body["similarity"]
    assert -1 <= body["similarity_detail"]["raw"] <= 1 and body["similarity_detail"]["of"].startswith("stock:")

    response = await client.get("/v1/voices/me", headers=as_user("alice"))
    me = await response.json()
    assert me["enrolled"] is True and me["status"] in {"fitting", "ready"}
    assert me["consent"] is True and me["grants"] == [{"grantee": "bot-7"}]
    assert me["quality"]["speech_s"] > 10 and me["created_at"]
    assert me["similarity"] == body["similarity"]
    assert {"fraction", "stage"} <= set(me["progress"])

    service = client.app[SERVICE]
    response = await client.delete("/v1/voices/me", headers=as_user("alice"))
    assert response.status == 204
    assert client.app[FORGOTTEN] == ["alice"]
    me = await (await client.get("/v1/voices/me", headers=as_user("alice"))).json()
    assert me["enrolled"] is False and me["status"] == "none"
    assert await service.voice_for("alice") is None


async def test_refused_recording_is_422_with_advice(client: TestClient) -> None:  # type: ignore[type-arg]
    three_seconds = wav_bytes(np.zeros(3 * 24000, dtype=np.float32))
    response = await client.post("/v1/voices", data=three_seconds, headers=as_user("bob", "audio/wav"))
    assert response.status == 422
    body = await response.json()
    assert body["quality"]["verdict"] == "rejected"
    assert quality.ADVICE_NO_SOUND in body["quality"]["advice"]
    assert quality.advice_speak_longer(8) in body["quality"]["advice"]  # 8 s of speech is the minimum
    assert body["error"]["message"]


async def test_wrong_type_is_415(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.post("/v1/voices", data=b"hello", headers=as_user("bob", "text/plain"))
    assert response.status == 415
    assert "audio/wav" in (await response.json())["error"]["message"]


async def test_undecodable_is_400(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.post(
        "/v1/voices", data=b"RIFF" + bytes(range(256)) * 8, headers=as_user("bob", "audio/wav")
    )
    assert response.status == 400
    assert (await response.json())["error"]["message"]


async def test_fifty_megabytes_is_413(client: TestClient) -> None:  # type: ignore[type-arg]
    big = bytes(50 * 1024 * 1024)
    response = await client.post("/v1/voices", data=big, headers=as_user("bob", "audio/wav"))
    assert response.status == 413
    assert "MB" in (await response.json())["error"]["message"]


async def test_fifty_megabytes_without_a_length_is_413(client: TestClient) -> None:  # type: ignore[type-arg]
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield bytes(1024 * 1024)

    response = await client.post("/v1/voices", data=chunks(), headers=as_user("bob", "audio/wav"))
    assert response.status == 413


async def test_bots_cannot_enroll(client: TestClient) -> None:  # type: ignore[type-arg]
    wav = voice_path("en_3005_enroll.wav").read_bytes()
    response = await client.post("/v1/voices", data=wav, headers=as_user("bot-7", "audio/wav"))
    assert response.status == 403


async def test_unknown_language_hint_is_400(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.post("/v1/voices?lang=xx", data=b"x", headers=as_user("bob", "audio/wav"))
    assert response.status == 400
