"""A room's speech for one WebRTC listener: Opus frames in, one mixed 20 ms PCM frame out per tick.

No I/O and no asyncio here. The room hands `add_packet()` each utterance's Opus
packets as fast as they are made (a clause arrives as a burst); `next_frame()` is
called once per 20 ms by the paced track and decodes just what it plays, so
decoding keeps to real time. Utterances that overlap are summed; between
utterances the frame is silence.
"""

from __future__ import annotations

import collections
import dataclasses
import uuid

import av
import numpy as np

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
# About 5 minutes of queued speech per listener; more means something is badly wrong upstream.
DEFAULT_MAX_QUEUED_PACKETS = 15000
# An utterance that sends nothing for this long is forgotten even if its end never came.
IDLE_TICKS_BEFORE_FORGET = 1500


class MixerFull(Exception):
    """The listener has more unplayed speech queued than it will ever catch up on."""


@dataclasses.dataclass
class _Stream:
    """One utterance being played: its packets not yet decoded and its decoded samples not yet played."""

    decoder: av.AudioCodecContext
    packets: collections.deque[bytes] = dataclasses.field(default_factory=collections.deque)
    pcm: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    ended: bool = False
    idle_ticks: int = 0

    def take(self, count: int) -> np.ndarray | None:
        """Up to `count` samples; None when nothing is ready (waiting for packets, or finished)."""
        while len(self.pcm) < count and self.packets:
            self.pcm = np.concatenate([self.pcm, _decode(self.decoder, self.packets.popleft())])
        if not len(self.pcm):
            return None
        out, self.pcm = self.pcm[:count], self.pcm[count:]
        return out

    @property
    def drained(self) -> bool:
        return self.ended and not self.packets and not len(self.pcm)


def _new_decoder() -> av.AudioCodecContext:
    decoder = av.CodecContext.create("libopus", "r")  # the reference decoder, as browsers use
    decoder.sample_rate = SAMPLE_RATE
    decoder.layout = "mono"
    return decoder


def _decode(decoder: av.AudioCodecContext, packet: bytes) -> np.ndarray:
    """Mono float32 samples of one Opus packet (a corrupt packet plays as nothing, not as an error)."""
    try:
        frames = decoder.decode(av.Packet(packet))
    except av.error.FFmpegError:
        return np.zeros(0, dtype=np.float32)
    parts = [_as_float(frame.to_ndarray()) for frame in frames]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _as_float(samples: np.ndarray) -> np.ndarray:
    """One channel of decoded samples as float32 in [-1, 1] (libopus gives int16)."""
    mono = samples.reshape(-1) if samples.shape[0] == 1 else samples.mean(axis=0)
    if mono.dtype == np.int16:
        return mono.astype(np.float32) / 32768.0
    return mono.astype(np.float32)


class SpeechMixer:
    def __init__(self, *, max_queued_packets: int = DEFAULT_MAX_QUEUED_PACKETS) -> None:
        self.max_queued_packets = max_queued_packets
        self._streams: dict[uuid.UUID, _Stream] = {}
        self.queued_packets = 0
        self.frames_out = 0
        self.speech_frames_out = 0  # frames that carried some utterance (not pure silence)

    @property
    def active(self) -> int:
        return len(self._streams)

    def add_packet(self, utterance: uuid.UUID, packet: bytes) -> None:
        """Queue one Opus packet of an utterance; raises MixerFull past the bound."""
        if self.queued_packets >= self.max_queued_packets:
            raise MixerFull(f"more than {self.max_queued_packets} packets of speech waiting to be played")
        stream = self._streams.get(utterance)
        if stream is None:
            stream = self._streams[utterance] = _Stream(_new_decoder())
        stream.packets.append(packet)
        self.queued_packets += 1

    def end(self, utterance: uuid.UUID) -> None:
        """No more packets will come for this utterance (speech_end or speech_error)."""
        stream = self._streams.get(utterance)
        if stream is not None:
            stream.ended = True
            if stream.drained:
                del self._streams[utterance]

    def next_frame(self) -> np.ndarray:
        """The next 20 ms for the listener: int16 mono, the sum of every utterance playing now."""
        mix = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        playing = False
        for utterance, stream in list(self._streams.items()):
            before = len(stream.packets)
            chunk = stream.take(FRAME_SAMPLES)
            self.queued_packets -= before - len(stream.packets)
            if chunk is not None:
                mix[: len(chunk)] += chunk
                playing = True
                stream.idle_ticks = 0
            else:
                stream.idle_ticks += 1
            if stream.drained or stream.idle_ticks > IDLE_TICKS_BEFORE_FORGET:
                del self._streams[utterance]
        self.frames_out += 1
        if playing:
            self.speech_frames_out += 1
        return (np.clip(mix, -1.0, 1.0) * 32767.0).astype(np.int16)
