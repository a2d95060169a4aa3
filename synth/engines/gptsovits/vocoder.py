"""Semantic tokens -> audio with the SoVITS decoder, whole or in chunks as tokens arrive.

The decoder's noise is drawn per 50 Hz frame from the utterance's seed, so a frame gets the
same noise whether it is rendered in one piece or in chunks.

Chunked rendering (`ChunkedVocoder`): each chunk decodes only a window of tokens, the new
ones plus `context` tokens before them, never the whole utterance again. The decoder is
not causal (attention and convolutions look both ways), so each chunk holds back its last
`overlap` tokens; the next chunk renders them again with more right context and the two
renderings are crossfaded (raised cosine), which removes clicks at the seams.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from synth.engines.gptsovits.backend import Backend

MAX_FRAMES = 3000  # 1500 tokens, the longest the AR stage produces


def frame_noise(seed: int, channels: int, scale: float, frames: int = MAX_FRAMES) -> np.ndarray:
    """[channels, frames] standard normal noise times the noise scale, fixed by the seed."""
    return (np.random.default_rng(seed).standard_normal((frames, channels)) * scale).T.astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class VocodeRequest:
    tokens: np.ndarray  # int64 [N]
    phones: np.ndarray  # int64 [P], the text's phones (without the prompt transcript)
    timbre: np.ndarray  # float32 [gin]
    noise: np.ndarray  # float32 [inter, >= 2N]


def vocode_batch(
    backend: Backend, requests: Sequence[VocodeRequest], first_token: Sequence[int] | None = None
) -> list[np.ndarray]:
    """Render token windows of several utterances in one decoder call.

    `first_token[i]` is the index of request i's first token within its utterance (chunked
    rendering), so it reads the right noise frames.
    """
    starts = list(first_token) if first_token is not None else [0] * len(requests)
    n = max(1, max(len(r.tokens) for r in requests))
    p = max(len(r.phones) for r in requests)
    b = len(requests)
    dims = backend.dims
    codes = np.zeros((b, n), np.int64)
    phones = np.zeros((b, p), np.int64)
    noise = np.zeros((b, dims.inter_channels, 2 * n), np.float32)
    for i, (r, s) in enumerate(zip(requests, starts, strict=True)):
        codes[i, : len(r.tokens)] = r.tokens
        phones[i, : len(r.phones)] = r.phones
        noise[i, :, : 2 * len(r.tokens)] = r.noise[:, 2 * s : 2 * (s + len(r.tokens))]
    code_lens = np.array([len(r.tokens) for r in requests], np.int64)
    phone_lens = np.array([len(r.phones) for r in requests], np.int64)
    ge = np.stack([r.timbre for r in requests])[:, :, None].astype(np.float32)
    audio = backend.vocode(codes, code_lens, phones, phone_lens, ge, noise)
    return [audio[i, : len(r.tokens) * dims.samples_per_token].astype(np.float32) for i, r in enumerate(requests)]


@dataclasses.dataclass(frozen=True)
class ChunkPolicy:
    first_chunk: int = 8  # tokens before the first audio (8 tokens = 320 ms of speech)
    chunk: int = 24  # tokens per later chunk
    context: int = 24  # tokens of left context re-read by each chunk
    overlap: int = 2  # tokens held back and crossfaded at each seam

    def __post_init__(self) -> None:
        if min(self.first_chunk, self.chunk) <= self.overlap or self.overlap < 1 or self.context < self.overlap:
            raise ValueError("chunks must be longer than the overlap, and context at least the overlap")


class ChunkedVocoder:
    """Feed tokens as they are sampled; get audio chunks whose concatenation is the utterance.

    `push`/`finish` render at once. A batching caller instead asks `due()`, collects the
    `window()` of every due utterance into one `vocode_batch` call and hands each result
    back to `accept()`.
    """

    def __init__(
        self, backend: Backend, phones: np.ndarray, timbre: np.ndarray, noise: np.ndarray, policy: ChunkPolicy
    ) -> None:
        self.backend = backend
        self.phones, self.timbre, self.noise, self.policy = phones, timbre, noise, policy
        self.spt = backend.dims.samples_per_token
        self.tokens: list[int] = []
        self.emitted = 0  # tokens whose audio is final and sent
        self.tail: np.ndarray | None = None  # previous rendering of tokens [emitted, emitted + overlap)

    def push(self, token: int) -> np.ndarray | None:
        self.tokens.append(token)
        return self._render(final=False) if self.due() else None

    def finish(self) -> np.ndarray | None:
        return self._render(final=True) if self.has_remainder() else None

    def due(self) -> bool:
        size = self.policy.first_chunk if self.emitted == 0 and self.tail is None else self.policy.chunk
        return len(self.tokens) - self.emitted >= size + self.policy.overlap

    def has_remainder(self) -> bool:
        return len(self.tokens) > self.emitted or self.tail is not None

    def window(self) -> tuple[VocodeRequest, int]:
        """The tokens the next chunk renders and the index of the first of them."""
        start = max(0, self.emitted - self.policy.context)
        return VocodeRequest(np.asarray(self.tokens[start:], np.int64), self.phones, self.timbre, self.noise), start

    def accept(self, audio: np.ndarray, final: bool) -> np.ndarray:
        """Audio of `window()` -> the next chunk to play."""
        start = max(0, self.emitted - self.policy.context)
        end = len(self.tokens) if final else len(self.tokens) - self.policy.overlap
        piece = audio[(self.emitted - start) * self.spt : (end - start) * self.spt].copy()
        if self.tail is not None:
            piece[: len(self.tail)] = crossfade(self.tail, piece[: len(self.tail)])
        self.tail = None if final else audio[(end - start) * self.spt :].copy()
        self.emitted = end
        return piece

    def _render(self, final: bool) -> np.ndarray:
        request, start = self.window()
        (audio,) = vocode_batch(self.backend, [request], [start])
        return self.accept(audio, final)


def crossfade(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Raised-cosine crossfade from `old` to `new` (same length).

    The gains sum to one (equal gain, not equal power): the two renderings of the seam are
    nearly the same signal, and an equal-power fade would overshoot by up to 3 dB there.
    """
    t = (np.arange(len(old)) + 0.5) / max(1, len(old))
    w = 0.5 - 0.5 * np.cos(np.pi * t)
    return (old * (1.0 - w) + new * w).astype(np.float32)
