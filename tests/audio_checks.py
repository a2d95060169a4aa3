"""Decode what the server sent and judge whether it sounds like speech (used by several tests)."""

from __future__ import annotations

import av
import numpy as np


def decode_opus(packets: list[bytes]) -> np.ndarray:
    """Decode raw Opus packets (48 kHz mono) with PyAV/libopus, as a client would."""
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = 48000
    decoder.layout = "mono"
    out: list[np.ndarray] = []
    for packet in packets:
        for frame in decoder.decode(av.Packet(packet)):
            samples = frame.to_ndarray().reshape(-1)
            if samples.dtype == np.int16:  # libopus decodes to s16: scale to [-1, 1]
                samples = samples.astype(np.float32) / 32768.0
            out.append(samples.astype(np.float32))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def voiced_ratio(pcm: np.ndarray, sample_rate: int = 48000, frame_s: float = 0.04) -> float:
    """Share of non-silent frames with a clear pitch period (70-400 Hz) by normalised autocorrelation."""
    frame = int(frame_s * sample_rate)
    lo, hi = sample_rate // 400, sample_rate // 70
    voiced = active = 0
    for start in range(0, len(pcm) - frame, frame):
        x = pcm[start : start + frame].astype(np.float64)
        x = x - x.mean()
        energy = float(np.dot(x, x))
        if energy / frame < 1e-5:  # silence: not counted
            continue
        active += 1
        ac = np.correlate(x, x, mode="full")[frame - 1 :]
        peak = float(ac[lo:hi].max()) / energy
        voiced += peak > 0.45
    return voiced / active if active else 0.0


def envelope_modulation(pcm: np.ndarray, sample_rate: int = 48000) -> float:
    """Coefficient of variation of the 20 ms RMS envelope: speech rises and falls, noise and tones do not."""
    hop = sample_rate // 50
    rms = np.array([np.sqrt(np.mean(pcm[i : i + hop] ** 2)) for i in range(0, len(pcm) - hop, hop)])
    return float(rms.std() / (rms.mean() + 1e-9))
