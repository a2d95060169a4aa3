"""A room's shared WebRTC audio: each frame taken once however many members pass it on, paced, fanned out."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from gateway.protocol import pack_frame
from gateway.rtc_media import RoomSpeech
from tests.rtc.test_rtc_mixer import packets_of


@pytest.fixture(scope="module")
def speech_packets() -> list[bytes]:
    return packets_of("en_1998_enroll.wav", 0.6)


async def test_copies_from_every_member_are_taken_once(speech_packets: list[bytes]) -> None:
    speech = RoomSpeech("lobby")
    utterance, stranger = uuid.uuid4(), uuid.uuid4()
    speech.start(utterance)
    for sequence, packet in enumerate(speech_packets):
        frame = pack_frame(utterance, sequence, packet)
        for _member in range(3):  # the room hands the same frame to each of three listeners
            speech.feed(frame)
        speech.feed(pack_frame(stranger, sequence, packet))  # another room's utterance: never started here
    assert speech.mixer.queued_packets == len(speech_packets)
    speech.end(utterance)
    speech.end(utterance)  # every member passes the end on too
    assert speech.mixer.active == 1  # still playing what was queued


async def test_every_listener_gets_the_same_paced_frames(speech_packets: list[bytes]) -> None:
    skipped = [0]

    def count_skip() -> None:
        skipped[0] += 1

    speech = RoomSpeech("lobby", on_frame_skipped=count_skip)
    first, second = speech.subscribe(), speech.subscribe()
    utterance = uuid.uuid4()
    speech.start(utterance)
    for sequence, packet in enumerate(speech_packets):
        speech.feed(pack_frame(utterance, sequence, packet))
    speech.end(utterance)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        heard = [await first.recv() for _ in range(len(speech_packets) + 10)]
        elapsed = loop.time() - started
        also = [await second.recv() for _ in range(3)]
    finally:
        await speech.close()
    # Real time: 20 ms a frame (with slack for a busy machine), never a burst.
    frames = len(heard)
    assert 0.6 * frames * 0.02 < elapsed < 2.0 * frames * 0.02 + 0.5
    assert [f.pts for f in heard[:3]] == [0, 960, 1920]
    levels = [float(np.abs(f.to_ndarray()).mean()) for f in heard]
    assert max(levels[: len(speech_packets)]) > 100  # speech
    assert max(levels[len(speech_packets) + 2 :]) == 0  # then silence, still flowing
    # The second listener lagged behind: it keeps only the newest few frames, not a growing backlog, and every
    # frame it lost was counted.
    assert also[0].pts >= heard[-6].pts
    assert skipped[0] == also[0].pts // 960
    with pytest.raises(MediaStreamError):
        await first.recv()  # closed with the room's audio


async def test_a_listener_kept_up_loses_nothing_when_the_loop_stalls() -> None:
    """After the event loop was blocked, the pacer catches up frame by frame, letting each listener take each one.

    Catching up in one burst overflowed a listener's small backlog, so a listener that was keeping up lost frames too
    (and the room's skip count counted them against the lagging listener's)."""
    skipped = [0]

    def count_skip() -> None:
        skipped[0] += 1

    speech = RoomSpeech("lobby", on_frame_skipped=count_skip)
    listener = speech.subscribe()
    heard: list[int] = []

    async def drain() -> None:
        while True:
            heard.append((await listener.recv()).pts)

    draining = asyncio.get_running_loop().create_task(drain())
    try:
        await asyncio.sleep(0.1)
        time.sleep(0.15)  # noqa: ASYNC251 -- on purpose: the loop is blocked, about 7 frames fall due at once
        await asyncio.sleep(0.1)
    finally:
        draining.cancel()
        await speech.close()
    assert len(heard) > 10
    assert skipped[0] == 0
    assert heard == list(range(0, 960 * len(heard), 960))


async def test_a_listener_that_stops_leaves_the_others_playing() -> None:
    speech = RoomSpeech("lobby")
    leaving, staying = speech.subscribe(), speech.subscribe()
    try:
        await leaving.recv()
        leaving.stop()
        assert speech.listeners == 1
        with pytest.raises(MediaStreamError):
            await leaving.recv()
        before = (await staying.recv()).pts
        assert (await staying.recv()).pts == before + 960
    finally:
        await speech.close()
