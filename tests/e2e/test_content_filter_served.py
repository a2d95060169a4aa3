"""The content filter over the real protocol: blocked text is refused with its category, never
synthesised, uncharged, and the audit log on disk keeps a keyed hash, not the text."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import REPO, ServerProcess
from voxroom.client import RequestRefused, VoxroomClient


@pytest.fixture(scope="module")
def filtered_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("filtered"),
        env={"VOXROOM_ENGINE": "fake", "VOXROOM_BLOCKLIST": str(REPO / "tests" / "data" / "blocklist_test.txt")},
    )
    yield proc
    proc.stop()


@pytest.mark.parametrize("evasion", ["You are such an 1d10t", "你是个傻\u200b瓜", "ＳＴＵＰＩＤ bot", "you moooron"])
async def test_blocked_text_is_refused_and_never_written_down(filtered_server: ServerProcess, evasion: str) -> None:
    client = await VoxroomClient.connect(filtered_server.ws_url, filtered_server.token("carol"))
    try:
        await client.join("polite")
        before = (await client.say("polite", "hello there"))["quota"]["used"]
        with pytest.raises(RequestRefused) as refused:
            await client.say("polite", evasion)
        assert refused.value.code == "content_blocked" and refused.value.error["category"] == "insult"
        after = (await client.say("polite", "hello again"))["quota"]["used"]
        assert after == before + 1, "the blocked message was charged"
    finally:
        await client.close()
    audit = (filtered_server.data_dir / "audit.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in audit.splitlines()]
    blocked = [r for r in records if r.get("reason") == "content_blocked"]
    assert blocked and all(len(r["text_hmac"]) >= 32 and r["category"] == "insult" for r in blocked)
    for path in filtered_server.data_dir.rglob("*"):
        if path.is_file():
            assert evasion.encode("utf-8") not in path.read_bytes(), f"blocked text found in {path}"
