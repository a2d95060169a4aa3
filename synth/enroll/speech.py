"""Noise suppression and speech activity on 16 kHz mono audio (WebRTC's NS and VAD).

Everything downstream of the upload (quality gate, voiceprint, judge embedding) works
on the cleaned signal and on the frames this module marks as speech.
"""

from __future__ import annotations

import numpy as np
import soxr

RATE = 16000
NS_FRAME = RATE // 100  # WebRTC's audio processing works on 10 ms frames
VAD_FRAME_MS = 30
VAD_FRAME = RATE * VAD_FRAME_MS // 1000
# Noise suppression level 0..4 (4 = most aggressive); 2 keeps the voice intact on clean input.
NS_LEVEL = 2
# VAD aggressiveness 0..3; 3 flags the fewest non-speech frames as speech.
VAD_MODE = 3


def to_16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return pcm.astype(np.float32, copy=False)
    return soxr.resample(pcm, rate, RATE).astype(np.float32)


def to_int16(pcm: np.ndarray) -> np.ndarray:
    return (np.clip(pcm, -1.0, 1.0) * 32767.0).astype(np.int16)


def suppress_noise(pcm16k: np.ndarray, level: int = NS_LEVEL) -> np.ndarray:
    """WebRTC noise suppression (no automatic gain: the level must stay measurable)."""
    from webrtc_noise_gain import AudioProcessor

    processor = AudioProcessor(0, level)
    samples = to_int16(pcm16k)
    usable = samples.size - samples.size % NS_FRAME
    out = np.empty(samples.size, dtype=np.int16)
    for start in range(0, usable, NS_FRAME):
        result = processor.Process10ms(samples[start : start + NS_FRAME].tobytes())
        out[start : start + NS_FRAME] = np.frombuffer(result.audio, dtype=np.int16)
    out[usable:] = samples[usable:]
    return out.astype(np.float32) / 32768.0


def speech_frames(pcm16k: np.ndarray, mode: int = VAD_MODE) -> np.ndarray:
    """One bool per 30 ms frame: does WebRTC's VAD hear speech there (smoothed)?"""
    # The webrtcvad wrapper module needs pkg_resources at import; its C extension does not.
    import _webrtcvad

    vad = _webrtcvad.create()
    _webrtcvad.init(vad)
    _webrtcvad.set_mode(vad, mode)
    samples = to_int16(pcm16k)
    count = samples.size // VAD_FRAME
    flags = np.zeros(count, dtype=bool)
    for i in range(count):
        chunk = samples[i * VAD_FRAME : (i + 1) * VAD_FRAME].tobytes()
        flags[i] = _webrtcvad.process(vad, RATE, chunk, VAD_FRAME)
    return _smooth(flags)


def _smooth(flags: np.ndarray, width: int = 5) -> np.ndarray:
    """Majority vote over `width` frames: drops isolated clicks, fills short gaps inside words."""
    if flags.size == 0:
        return flags
    padded = np.pad(flags.astype(np.float32), (width // 2, width // 2))
    votes = np.convolve(padded, np.ones(width, dtype=np.float32), mode="valid")
    return votes > width / 2


def frame_mask_to_samples(flags: np.ndarray, n_samples: int, frame: int = VAD_FRAME) -> np.ndarray:
    mask = np.repeat(flags, frame)
    if mask.size < n_samples:
        mask = np.pad(mask, (0, n_samples - mask.size))
    return mask[:n_samples]


def speech_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) frame indices of each run of speech frames."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, flags.size))
    return runs
