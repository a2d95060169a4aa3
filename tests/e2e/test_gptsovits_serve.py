"""`voxroom serve --engine gpt-sovits` on tiny random models in the official formats, end to end."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.audio_checks import decode_opus
from tests.conftest import SHARED_VOICES, ServerProcess
from voxroom.client import VoxroomClient

MAX_TOKENS = 30  # random weights may never say EOS: bound each clause (30 tokens = 1.2 s)


@pytest.fixture(scope="module")
def gptsovits_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    models = tmp_path_factory.mktemp("gsv-models")
    subprocess.run([sys.executable, "-m", "synth.engines.gptsovits.tiny", "--out", str(models)], check=True)
    (models / "voices").mkdir(exist_ok=True)
    shutil.copy(SHARED_VOICES / "zh_S0764_enroll.wav", models / "voices" / "ref.wav")
    proc = ServerProcess(
        tmp_path_factory.mktemp("gsv-server"),
        env={
            "VOXROOM_ENGINE": "gpt-sovits",
            "VOXROOM_MODELS_DIR": str(models),
            "VOXROOM_GPTSOVITS_MAX_TOKENS": str(MAX_TOKENS),
        },
    )
    yield proc
    proc.stop()


async def test_say_is_served_by_the_gpt_sovits_engine(gptsovits_server: ServerProcess) -> None:
    server = gptsovits_server
    alice = await VoxroomClient.connect(server.ws_url, server.token("alice"))
    bob = await VoxroomClient.connect(server.ws_url, server.token("bob"))
    try:
        await alice.join("gsv")
        await bob.join("gsv")
        accepted = await alice.say("gsv", "你好,今天天气很好。")
        assert accepted["voice"] == "stock:ref"
        heard = await bob.utterance(accepted["utterance"], timeout=180)
        assert heard.end is not None and heard.end["type"] == "speech_end", heard.end
        assert heard.sequences == list(range(heard.end["frames"]))
        seconds = len(decode_opus(heard.packets)) / 48000
        # Two clauses of at most MAX_TOKENS semantic tokens (40 ms each), plus pauses and codec padding.
        assert 0.1 < seconds <= 2 * MAX_TOKENS * 0.04 + 1.0
    finally:
        await alice.close()
        await bob.close()
