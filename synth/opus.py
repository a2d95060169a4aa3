"""PCM to 20 ms Opus packets at 48 kHz mono, once per utterance, with PyAV (libopus).

One `OpusStream` per utterance: feed it PCM chunks at the engine's rate as they are
rendered; it resamples to 48 kHz and returns every whole 20 ms packet so far, so the
first packets leave before the utterance is finished. `flush()` pads the last frame.
"""

from __future__ import annotations

import fractions

import av
import numpy as np

OPUS_RATE = 48000
FRAME_MS = 20
FRAME_SAMPLES = OPUS_RATE * FRAME_MS // 1000
DEFAULT_BITRATE = 32000


class OpusStream:
    def __init__(self, input_rate: int, *, bitrate: int = DEFAULT_BITRATE) -> None:
        self.input_rate = input_rate
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.sample_rate = OPUS_RATE
        self._codec.layout = "mono"
        self._codec.format = av.AudioFormat("s16")
        self._codec.bit_rate = bitrate
        self._codec.time_base = fractions.Fraction(1, OPUS_RATE)
        self._codec.options = {"application": "voip", "frame_duration": str(FRAME_MS)}
        self._codec.open()
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
        self._pending = np.zeros(0, dtype=np.int16)  # 48 kHz samples not yet a whole frame
        self._pts = 0
        self._input_pts = 0
        self.samples_in = 0  # at the input rate, for duration accounting

    def _resample(self, pcm: np.ndarray | None) -> np.ndarray:
        if pcm is None:
            frames = self._resampler.resample(None)
        else:
            ints = (np.clip(pcm, -1.0, 1.0) * 32767.0).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(ints, format="s16", layout="mono")
            frame.sample_rate = self.input_rate
            frame.pts = self._input_pts
            frame.time_base = fractions.Fraction(1, self.input_rate)
            self._input_pts += ints.shape[1]
            frames = self._resampler.resample(frame)
        parts = [f.to_ndarray().reshape(-1) for f in frames]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def _encode_whole_frames(self) -> list[bytes]:
        packets: list[bytes] = []
        whole = len(self._pending) // FRAME_SAMPLES * FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            block = self._pending[start : start + FRAME_SAMPLES].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = OPUS_RATE
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, OPUS_RATE)
            self._pts += FRAME_SAMPLES
            packets.extend(bytes(p) for p in self._codec.encode(frame))
        self._pending = self._pending[whole:]
        return packets

    def encode(self, pcm: np.ndarray) -> list[bytes]:
        """Add PCM (float32 mono at input_rate); return the packets now complete."""
        if pcm.size == 0:
            return []
        self.samples_in += pcm.size
        self._pending = np.concatenate([self._pending, self._resample(pcm)])
        return self._encode_whole_frames()

    def flush(self) -> list[bytes]:
        """End of utterance: pad the last partial frame with silence and drain the encoder."""
        self._pending = np.concatenate([self._pending, self._resample(None)])
        remainder = len(self._pending) % FRAME_SAMPLES
        if remainder:
            self._pending = np.concatenate([self._pending, np.zeros(FRAME_SAMPLES - remainder, np.int16)])
        packets = self._encode_whole_frames()
        packets.extend(bytes(p) for p in self._codec.encode(None))
        return packets


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.float32)
