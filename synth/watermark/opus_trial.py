"""An Ogg/Opus encoding of PCM, made the way a room listener receives it, to test the mark against.

Used by the watermark tests and benchmark: mark, encode at a bitrate, decode, detect.
"""

from __future__ import annotations

import io

import av
import numpy as np

from synth.watermark.resample import resample

OPUS_RATE = 48000


def encode_ogg_opus(pcm: np.ndarray, sample_rate: int, bitrate: int) -> bytes:
    """Mono float PCM as an Ogg/Opus file at `bitrate` bit/s (libopus "voip", 48 kHz, 20 ms frames)."""
    audio = np.clip(resample(pcm, sample_rate, OPUS_RATE), -1.0, 1.0)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=OPUS_RATE)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        stream.options = {"application": "voip", "frame_duration": "20"}  # as the rooms encode
        frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
        frame.sample_rate = OPUS_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
