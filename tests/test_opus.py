from __future__ import annotations

import numpy as np

from synth.opus import FRAME_SAMPLES, OpusStream
from tests.audio_checks import decode_opus


def tone(seconds: float, rate: int = 24000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_packets_stream_out_as_pcm_arrives_and_decode_to_the_same_length() -> None:
    stream = OpusStream(24000)
    audio = tone(1.5)
    first = stream.encode(audio[:6000])  # 0.25 s in: whole 20 ms frames are out already
    assert len(first) == 12
    rest = stream.encode(audio[6000:]) + stream.flush()
    packets = first + rest
    assert all(0 < len(p) < 400 for p in packets)
    decoded = decode_opus(packets)
    assert abs(len(decoded) / 48000 - 1.5) < 0.05
    # The tone survives: its frequency is where the spectrum peaks.
    spectrum = np.abs(np.fft.rfft(decoded[4800:52800]))
    peak_hz = np.argmax(spectrum) * 48000 / 48000
    assert abs(peak_hz - 220) < 3


def test_partial_frame_is_padded_on_flush() -> None:
    stream = OpusStream(24000)
    packets = stream.encode(tone(0.011)) + stream.flush()
    decoded = decode_opus(packets)
    assert len(decoded) % FRAME_SAMPLES == 0 and len(decoded) >= FRAME_SAMPLES
