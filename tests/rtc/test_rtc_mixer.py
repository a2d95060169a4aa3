"""The listener's mixer on real recordings: one utterance plays as itself, two overlapping ones are summed."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import soundfile

from gateway.rtc_mixer import FRAME_SAMPLES, MixerFull, SpeechMixer
from synth.opus import OpusStream
from tests.audio_checks import decode_opus
from tests.conftest import SHARED_VOICES


def packets_of(name: str, seconds: float, gain: float = 0.5) -> list[bytes]:
    audio, rate = soundfile.read(SHARED_VOICES / name, dtype="float32", frames=int(24000 * seconds))
    stream = OpusStream(rate)
    return stream.encode(audio * gain) + stream.flush()


def play(mixer: SpeechMixer, frames: int) -> np.ndarray:
    return np.concatenate([mixer.next_frame() for _ in range(frames)]).astype(np.float32) / 32767.0


@pytest.fixture(scope="module")
def english() -> list[bytes]:
    return packets_of("en_1688_enroll.wav", 2.0)


@pytest.fixture(scope="module")
def chinese() -> list[bytes]:
    return packets_of("zh_S0764_enroll.wav", 1.5)


def test_one_utterance_plays_as_decoded_then_silence(english: list[bytes]) -> None:
    mixer = SpeechMixer()
    utterance = uuid.uuid4()
    for packet in english:
        mixer.add_packet(utterance, packet)
    mixer.end(utterance)
    played = play(mixer, len(english) + 10)
    expected = decode_opus(english)
    assert np.abs(played[: len(expected)] - expected).max() < 2e-4  # the same samples, up to int16 rounding
    assert not played[len(expected) :].any()  # then silence
    assert mixer.active == 0 and mixer.queued_packets == 0
    assert mixer.speech_frames_out == len(english)


def test_overlapping_utterances_are_summed(english: list[bytes], chinese: list[bytes]) -> None:
    mixer = SpeechMixer()
    first, second = uuid.uuid4(), uuid.uuid4()
    for a, b in zip(english, chinese, strict=False):  # interleaved, as the room delivers them
        mixer.add_packet(first, a)
        mixer.add_packet(second, b)
    for packet in english[len(chinese) :]:
        mixer.add_packet(first, packet)
    mixer.end(first)
    mixer.end(second)
    assert mixer.active == 2
    played = play(mixer, len(english))
    a, b = decode_opus(english), decode_opus(chinese)
    expected = a.copy()
    expected[: len(b)] += b
    assert np.abs(played - np.clip(expected, -1, 1)[: len(played)]).max() < 3e-4
    assert mixer.active == 0


def test_a_frame_waits_for_packets_without_stalling(english: list[bytes]) -> None:
    mixer = SpeechMixer()
    utterance = uuid.uuid4()
    mixer.add_packet(utterance, english[10])
    assert mixer.next_frame().any()
    silent = mixer.next_frame()  # the next packet has not come: silence, not a wait
    assert silent.shape == (FRAME_SAMPLES,) and not silent.any()
    assert mixer.active == 1  # not ended: it stays for the packets still to come


def test_the_queue_is_bounded(english: list[bytes]) -> None:
    mixer = SpeechMixer(max_queued_packets=5)
    utterance = uuid.uuid4()
    for packet in english[:5]:
        mixer.add_packet(utterance, packet)
    with pytest.raises(MixerFull):
        mixer.add_packet(utterance, english[5])
    mixer.next_frame()
    mixer.add_packet(utterance, english[5])  # room again once one was played
