"""Behaviour under load over the real protocol (fake engine): overloaded, phrase cache, dropping unwanted work."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench.common import scrape_metrics
from tests.audio_checks import decode_opus
from tests.conftest import ServerProcess
from voxroom.client import RequestRefused, VoxroomClient

LONG = "This message is long enough to keep the only synthesis slot busy for a little while."


async def test_overloaded_when_full_and_nothing_is_charged(fake_server: ServerProcess) -> None:
    client = await VoxroomClient.connect(fake_server.ws_url, fake_server.token("olga"))
    try:
        await client.join("full")
        first = await client.say("full", LONG)
        with pytest.raises(RequestRefused) as refused:
            await client.say("full", "and one more")
        assert refused.value.code == "overloaded"
        await client.utterance(first["utterance"])
        await asyncio.sleep(0.1)
        second = await client.say("full", "now there is room")
        assert second["quota"]["used"] == first["quota"]["used"] + 1, "the refused say was charged"
        await client.utterance(second["utterance"])
    finally:
        await client.close()


async def test_cached_phrase_is_byte_identical_and_counted(fake_server: ServerProcess) -> None:
    client = await VoxroomClient.connect(fake_server.ws_url, fake_server.token("carl"))
    try:
        await client.join("cache")
        before = scrape_metrics(fake_server.http)
        first = await client.utterance((await client.say("cache", "哈哈哈"))["utterance"])
        second = await client.utterance((await client.say("cache", "哈哈哈"))["utterance"])
        assert first.packets and first.packets == second.packets
        assert len(decode_opus(second.packets)) > 0
        after = scrape_metrics(fake_server.http)
        hits = after["voxroom_phrase_cache_hits_total"] - before.get("voxroom_phrase_cache_hits_total", 0.0)
        assert hits == 1
        assert after['voxroom_time_to_first_audio_seconds_count{cached="true"}'] >= 1
    finally:
        await client.close()


async def test_work_for_an_emptied_room_is_dropped_and_refunded(fake_server: ServerProcess) -> None:
    sender = await VoxroomClient.connect(fake_server.ws_url, fake_server.token("dora"))
    try:
        await sender.join("ghost")
        before = scrape_metrics(fake_server.http)
        # Two clauses: the second is queued behind the first; leaving drops it uncomputed.
        accepted = await sender.say("ghost", "First clause here, and then a second clause that nobody will hear.")
        await sender.leave("ghost")
        await asyncio.sleep(1.5)
        after = scrape_metrics(fake_server.http)
        dropped = after.get('voxroom_synth_dropped_total{reason="unwanted"}', 0.0) - before.get(
            'voxroom_synth_dropped_total{reason="unwanted"}', 0.0
        )
        assert dropped >= 1
        assert accepted["type"] == "accepted"
        await sender.join("ghost")
        again = await sender.say("ghost", "ok")  # the slot was released: the server serves on
        assert (await sender.utterance(again["utterance"])).end["type"] == "speech_end"  # type: ignore[index]
    finally:
        await sender.close()


@pytest.fixture(scope="module")
def roomy_fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The fake engine with room for many utterances: only predicted compute limits admission."""
    proc = ServerProcess(tmp_path_factory.mktemp("roomy"), env={"VOXROOM_ENGINE": "fake", "VOXROOM_MAX_ACTIVE": "100"})
    yield proc
    proc.stop()


async def test_a_burst_beyond_render_capacity_is_refused_uncharged_and_the_rest_is_spoken_whole(
    roomy_fake_server: ServerProcess,
) -> None:
    server = roomy_fake_server
    # Sixteen long messages at once: their first clauses alone keep the one worker busy ~4 s (measured at startup),
    # far past the first-audio bound, and their streams need twice the audio the engine makes.
    clients = [await VoxroomClient.connect(server.ws_url, server.token(f"burst-{i}")) for i in range(16)]
    try:
        for client in clients:
            await client.join("burst")
        text = LONG + " " + LONG  # several clauses, a few seconds of speech each
        replies = await asyncio.gather(*(c.say("burst", text) for c in clients), return_exceptions=True)
        accepted = [(c, r) for c, r in zip(clients, replies, strict=True) if isinstance(r, dict)]
        refused = [(c, r) for c, r in zip(clients, replies, strict=True) if isinstance(r, RequestRefused)]
        assert accepted and refused, replies
        assert all(r.code == "overloaded" and "late" in str(r) for _, r in refused)
        assert all(r.error["retry_after_s"] >= 0.5 for _, r in refused)
        for client, reply in accepted:
            heard = await client.utterance(reply["utterance"], timeout=120)
            assert heard.end is not None and heard.end["type"] == "speech_end"
            assert heard.sequences == list(range(heard.end["frames"]))
        # Refused senders were not charged: their next message is their first.
        client, _ = refused[0]
        await asyncio.sleep(0.5)
        again = await client.say("burst", "ok")
        assert again["quota"]["used"] == 1
        metrics = scrape_metrics(server.http)
        assert metrics['voxroom_synth_refused_total{reason="compute"}'] == len(refused)
    finally:
        for client in clients:
            await client.close()
