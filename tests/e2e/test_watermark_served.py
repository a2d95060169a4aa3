"""Every utterance leaving the server is marked: the detector finds it, over HTTP and on the command line."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.audio_checks import decode_opus
from tests.conftest import SHARED_VOICES, ServerProcess
from voxroom.client import VoxroomClient


def wav_bytes(pcm: np.ndarray, rate: int = 48000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(pcm, -1, 1) * 32767).astype(np.int16).tobytes())
    return buffer.getvalue()


def post_detect(server: ServerProcess, body: bytes, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "audio/wav"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{server.http}/v1/detect", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


async def test_spoken_audio_is_marked_and_detected(server: ServerProcess, tmp_path: Path) -> None:
    client = await VoxroomClient.connect(server.ws_url, server.token("wendy"))
    try:
        await client.join("marked")
        # About four seconds: more than the detector needs for a confident answer (README: 3 s).
        text = "This sentence is spoken by the server, and every second of it is marked."
        accepted = await client.say("marked", text)
        heard = await client.utterance(accepted["utterance"], timeout=120)
    finally:
        await client.close()
    clip = wav_bytes(decode_opus(heard.packets))
    status, answer = post_detect(server, clip, server.token("wendy"))
    assert status == 200 and answer["watermarked"] is True, answer
    # The detector counts only audible frames; this clip holds several seconds of them.
    assert answer["seconds_analysed"] >= 2 and answer["confidence"] in ("medium", "high"), answer

    path = tmp_path / "heard.wav"
    path.write_bytes(clip)
    command = [sys.executable, "-m", "voxroom.cli", "detect", str(path), "--json"]
    cli = await asyncio.to_thread(subprocess.run, command, capture_output=True)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["watermarked"] is True


def test_clean_recording_is_not_marked_and_bad_input_is_refused(server: ServerProcess) -> None:
    clean = (SHARED_VOICES / "en_1688_probe.wav").read_bytes()
    status, answer = post_detect(server, clean, server.token("wendy"))
    assert status == 200 and answer["watermarked"] is False, answer
    status, answer = post_detect(server, b"definitely not audio" * 50, server.token("wendy"))
    assert status == 400 and answer["error"]["code"] == "bad_request"  # type: ignore[index]
    status, _ = post_detect(server, clean, None)
    assert status == 401


@pytest.mark.parametrize("size", [10 * 1024 * 1024 + 1])
def test_oversized_clip_is_refused(server: ServerProcess, size: int) -> None:
    status, answer = post_detect(server, b"\0" * size, server.token("wendy"))
    assert status == 413
