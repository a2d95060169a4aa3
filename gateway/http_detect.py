"""POST /v1/detect: did Voxroom make this clip? Answers from the inaudible watermark."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.http import error_response, read_body
from gateway.ws import CTX_KEY
from synth.audio_io import AudioDecodeError
from synth.watermark.files import detect_file
from voxroom.errors import ErrorCode

MAX_DETECT_BYTES = 10 * 1024 * 1024


async def detect(request: web.Request) -> web.Response:
    ctx = request.app[CTX_KEY]
    if request.content_length is not None and request.content_length > MAX_DETECT_BYTES:
        return error_response(ErrorCode.BAD_REQUEST, "The clip is larger than 10 MB; send a shorter one.", status=413)
    data = await read_body(request, MAX_DETECT_BYTES)
    if data is None:
        return error_response(ErrorCode.BAD_REQUEST, "The clip is larger than 10 MB; send a shorter one.", status=413)
    try:
        detection = await asyncio.to_thread(detect_file, data, ctx.watermarker)
    except AudioDecodeError as exc:
        return error_response(ErrorCode.BAD_REQUEST, str(exc))
    ctx.metrics.detections.labels(verdict="marked" if detection.watermarked else "unmarked").inc()
    return web.json_response(detection.as_json())


def detect_routes() -> list[web.RouteDef]:
    return [web.post("/v1/detect", detect)]
