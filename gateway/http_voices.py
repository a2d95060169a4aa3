"""HTTP handlers for the caller's own voice: enroll (POST /v1/voices), status, and erase.

The auth middleware has already put the verified `Account` in `request[ACCOUNT_KEY]`.
Every way an upload can be wrong is a 4xx with a message a person can act on:
413 too large, 415 not an audio type we take, 400 not decodable, 422 refused by the
quality gate (with the quality report and its advice).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.http import ACCOUNT_KEY, read_body
from synth.audio_io import AudioDecodeError
from synth.enroll.contract import LANGUAGE_HINTS
from synth.enroll.errors import EnrollmentError, RecordingRejected, UnsupportedAudioType, UploadTooLarge
from synth.enroll.service import EnrollmentService
from voxroom.errors import ErrorCode


def _refusal(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"error": {"code": str(ErrorCode.BAD_REQUEST), "message": message}, **extra}, status=status
    )


async def _read_upload(request: web.Request, limit: int) -> bytes:
    data = await read_body(request, limit)
    if data is None:
        raise UploadTooLarge(
            f"The file is larger than {limit // (1024 * 1024)} MB; "
            "send at most 5 minutes, or a compressed format (Ogg/Opus, WebM, MP3)."
        )
    return data


def voice_routes(enrollment: EnrollmentService) -> list[web.RouteDef]:
    async def enroll(request: web.Request) -> web.Response:
        account = request[ACCOUNT_KEY]
        if account.kind != "user":
            return _refusal(403, "Only people can enroll a voice; bots speak in voices they are granted.")
        language = request.query.get("lang", "unknown")
        if language not in LANGUAGE_HINTS:
            return _refusal(400, f"lang must be one of {', '.join(LANGUAGE_HINTS)}.")
        content_type = request.headers.get("Content-Type", "")
        try:
            # Type and declared length first, so a wrong or huge upload is refused before it is read.
            enrollment.check_upload(request.content_length or 0, content_type)
            data = await _read_upload(request, enrollment.max_upload_bytes)
            result = await enrollment.enroll(account.id, data, content_type, language_hint=language)
        except UploadTooLarge as exc:
            return _refusal(413, exc.message)
        except UnsupportedAudioType as exc:
            return _refusal(415, exc.message)
        except AudioDecodeError as exc:
            return _refusal(400, str(exc))
        except RecordingRejected as exc:
            return _refusal(422, exc.message, quality=exc.quality)
        except EnrollmentError as exc:
            return _refusal(400, exc.message)
        return web.json_response(result.to_dict(), status=201)

    async def status(request: web.Request) -> web.Response:
        account = request[ACCOUNT_KEY]
        return web.json_response(await enrollment.status(account.id))

    async def erase(request: web.Request) -> web.Response:
        account = request[ACCOUNT_KEY]
        await enrollment.delete(account.id)
        return web.Response(status=204)

    return [
        web.post("/v1/voices", enroll),
        web.get("/v1/voices/me", status),
        web.delete("/v1/voices/me", erase),
    ]
