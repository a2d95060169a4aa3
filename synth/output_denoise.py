"""A noise suppressor after the engine, for fitted voices whose output hisses.

A fit that moves the timbre toward a speaker makes the engine's output noisier: whole fits lose more of P.835
DNSMOS's background score (BAK 4.05 -> 3.64 over the nine reference speakers) than of its speech score (SIG
3.51 -> 3.37). RNNoise (Xiph's recurrent suppressor, 10 ms frames at 48 kHz, model built into the `pyrnnoise`
wheel) wins part of it back on the same renders (bench/output_denoise.py, output_denoise_s24.json): whole fits
OVRL 2.90 -> 3.01, BAK 3.81, judged similarity -0.007. On the served voices (without colour) half of it mixed
with the rest does best: OVRL 3.145 -> 3.192, P.808 3.99 -> 4.01, similarity -0.004; on the stock voices the
whole of it does no good (OVRL -0.03), so only fitted voices are suppressed, by the share their fit gives.

The suppressor streams: `OutputDenoiser` takes a clause's audio in pieces and gives back the same number of
samples, aligned with the input (RNNoise's 20 ms of look-behind is held back until the clause ends).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterable, Iterator

import numpy as np

RATE = 24000  # the engine's
DENOISER_RATE = 48000  # RNNoise's only rate
PCM_SCALE = 32768.0  # RNNoise expects 16-bit sample values as floats


@functools.cache
def _rnnoise():  # type: ignore[no-untyped-def]
    from pyrnnoise import rnnoise  # ctypes binding of librnnoise, which carries its trained model

    return rnnoise


class OutputDenoiser:
    """One clause's audio through RNNoise, in pieces; the output of all pieces is as long as their input.

    `share` of the suppressed signal is mixed with the rest of the input, sample for sample."""

    def __init__(self, share: float = 1.0) -> None:
        import soxr

        if not 0.0 <= share <= 1.0:
            raise ValueError("the suppressed share is from 0 to 1")
        self._share = share
        self._unanswered = np.zeros(0, np.float32)  # input whose suppressed samples have not come out yet
        lib = _rnnoise()
        self._lib = lib
        self._frame = int(lib.FRAME_SIZE)
        self._delay = 2 * self._frame  # measured: the output lags the input by two frames
        self._up = soxr.ResampleStream(RATE, DENOISER_RATE, 1, dtype="float32")
        self._down = soxr.ResampleStream(DENOISER_RATE, RATE, 1, dtype="float32")
        self._pending = np.zeros(0, np.float32)  # 48 kHz input not yet a whole frame
        self._to_skip = self._delay  # leading 48 kHz output samples that are RNNoise's delay
        self._taken = 0  # 24 kHz samples taken in
        self._given = 0  # 24 kHz samples given back
        self._state = lib.create()

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state is not None:
            self._lib.destroy(state)

    def __call__(self, piece: np.ndarray, last: bool = False) -> np.ndarray:
        """The denoised audio for `piece` (24 kHz mono float32) as far as it is known; `last` ends the clause and
        gives back the rest, so that the whole output is exactly as long as the whole input."""
        self._taken += len(piece)
        self._unanswered = np.concatenate([self._unanswered, np.asarray(piece, np.float32)])
        upsampled = self._up.resample_chunk(np.asarray(piece, np.float32) * PCM_SCALE, last=last)
        x = np.concatenate([self._pending, upsampled])
        if last:  # push the held-back samples through with silence
            x = np.concatenate([x, np.zeros(self._delay + (-(len(x) + self._delay)) % self._frame, np.float32)])
        whole = len(x) - len(x) % self._frame
        self._pending = x[whole:]
        cleaned = self._suppress(x[:whole])
        skip = min(self._to_skip, len(cleaned))
        self._to_skip -= skip
        out = self._down.resample_chunk(cleaned[skip:] / PCM_SCALE, last=last)
        if last:
            out = _fit_length(out, self._taken - self._given)
        else:
            out = out[: max(0, self._taken - self._given)]
        self._given += len(out)
        original, self._unanswered = self._unanswered[: len(out)], self._unanswered[len(out) :]
        return np.asarray(self._share * out + (1.0 - self._share) * original, np.float32)

    def _suppress(self, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        pointer = ctypes.POINTER(ctypes.c_float)
        for start in range(0, len(x), self._frame):
            frame = np.ascontiguousarray(x[start : start + self._frame])
            self._lib.lib.rnnoise_process_frame(
                self._state, out[start : start + self._frame].ctypes.data_as(pointer), frame.ctypes.data_as(pointer)
            )
        return out


def _fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    if len(audio) >= length:
        return audio[:length]
    return np.concatenate([audio, np.zeros(length - len(audio), np.float32)])


def denoise(audio: np.ndarray, share: float = 1.0) -> np.ndarray:
    """A whole clause (24 kHz mono float32) through RNNoise, aligned with the input and as long (`share` of it
    suppressed, the rest as it was; none: `audio` itself, without running the suppressor)."""
    if share == 0.0:
        return audio
    return OutputDenoiser(share)(audio, last=True)


def denoised(pieces: Iterable[np.ndarray], share: float = 1.0) -> Iterator[np.ndarray]:
    """A clause's pieces through one OutputDenoiser, each as soon as it comes; the held-back tail after the last
    (a share of none passes the pieces on untouched)."""
    if share == 0.0:
        yield from pieces
        return
    denoiser = OutputDenoiser(share)
    for piece in pieces:
        out = denoiser(piece)
        if len(out):
            yield out
    tail = denoiser(np.zeros(0, np.float32), last=True)
    if len(tail):
        yield tail
