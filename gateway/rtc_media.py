"""One room's speech for all its WebRTC listeners: fed once, mixed once, paced once, fanned out.

Every listener of a room is a room member, so the room hands each of them the same
frames; `RoomSpeech` keeps the first copy of each (utterance, sequence) and ignores
the rest. One task per room pulls a 20 ms frame from the mixer on the event loop's
clock and gives the same `AudioFrame` to every `ListenerTrack`; aiortc then encodes
it once per listener, as each listener's connection needs its own Opus state.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import uuid
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from gateway import protocol
from gateway.rtc_mixer import FRAME_SAMPLES, SAMPLE_RATE, MixerFull, SpeechMixer

log = logging.getLogger(__name__)

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
# When the loop fell this far behind, restart the clock rather than send a burst to catch up.
MAX_LATE_S = 0.2
# Frames a listener may have waiting; an encoder further behind loses the oldest. Small, because a
# backlog once built is never worked off (frames come exactly as fast as they are sent) and adds delay.
LISTENER_BACKLOG_FRAMES = 3


class ListenerTrack(MediaStreamTrack):
    """The audio track one peer sends: the room's frames, as the room's clock makes them."""

    kind = "audio"

    def __init__(self, speech: RoomSpeech) -> None:
        super().__init__()
        self._speech: RoomSpeech | None = speech
        self._frames: collections.deque[AudioFrame] = collections.deque(maxlen=LISTENER_BACKLOG_FRAMES)
        self._ready = asyncio.Event()

    def push(self, frame: AudioFrame) -> None:
        if len(self._frames) == self._frames.maxlen and self._speech is not None:
            self._speech.frame_skipped()  # the oldest waiting frame is dropped: the listener hears a 20 ms skip
        self._frames.append(frame)
        self._ready.set()

    async def recv(self) -> AudioFrame:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()  # wake a pending recv() so it ends
        if self._speech is not None:
            self._speech.unsubscribe(self)
            self._speech = None


class RoomSpeech:
    def __init__(self, room: str, on_frame_skipped: Callable[[], None] | None = None) -> None:
        self.room = room
        # Called for each frame a listener's encoder fell too far behind to send (a metric, for one on call).
        self.frame_skipped: Callable[[], None] = on_frame_skipped or (lambda: None)
        self.mixer = SpeechMixer()
        self._next_sequence: dict[uuid.UUID, int] = {}  # utterances in progress, and the frame expected next
        self._listeners: set[ListenerTrack] = set()
        self._task: asyncio.Task[None] | None = None
        self.dropped_packets = 0

    # ---- fed by the room's members ----------------------------------------------------------

    def start(self, utterance: uuid.UUID) -> None:
        self._next_sequence.setdefault(utterance, 0)

    def feed(self, frame: bytes) -> None:
        """One binary frame as the room sent it; copies already taken are ignored."""
        utterance, sequence, packet = protocol.unpack_frame(frame)
        expected = self._next_sequence.get(utterance)
        if expected is None or sequence < expected:
            return  # not this room's, or a copy of a frame already taken
        self._next_sequence[utterance] = sequence + 1
        try:
            self.mixer.add_packet(utterance, packet)
        except MixerFull as exc:
            self.dropped_packets += 1
            if self.dropped_packets == 1:
                log.warning("room %s: speech dropped: %s", self.room, exc)

    def end(self, utterance: uuid.UUID) -> None:
        if self._next_sequence.pop(utterance, None) is not None:
            self.mixer.end(utterance)

    # ---- listeners ---------------------------------------------------------------------------

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def subscribe(self) -> ListenerTrack:
        track = ListenerTrack(self)
        self._listeners.add(track)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"room-speech-{self.room[:16]}")
            self._task.add_done_callback(self._ended)
        return track

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The frame task only ends by close(); if it died, say so and end every listener's track."""
        if task.cancelled():
            return
        log.error(
            "room %s: the audio task failed; its WebRTC listeners are cut off", self.room, exc_info=task.exception()
        )
        for track in list(self._listeners):
            track.stop()

    def unsubscribe(self, track: ListenerTrack) -> None:
        self._listeners.discard(track)

    async def close(self) -> None:
        for track in list(self._listeners):
            track.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        """Make one frame every 20 ms on the loop's clock and hand it to every listener."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        pts = 0
        while True:
            samples = self.mixer.next_frame()
            frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = pts
            frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
            pts += FRAME_SAMPLES
            for track in list(self._listeners):
                track.push(frame)
            next_at += FRAME_S
            delay = next_at - loop.time()
            if delay < -MAX_LATE_S:
                next_at = loop.time()  # the loop was blocked: carry on from now, without a burst
            # Yield even when late: catching up must let each listener take each frame, or a listener that
            # keeps up would overflow its small backlog and lose frames.
            await asyncio.sleep(max(0.0, delay))
