"""Continuous batching with streaming out: many utterances decode together and each one
yields audio chunks as soon as it has enough tokens.

Each `step()` advances the autoregressive batch by one token (admitting new utterances
first), then renders, in one decoder call, the next chunk of every utterance that has one
due. This is the object a scheduler drives; `GptSovitsEngine` uses it for `stream_clause`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth.engines.gptsovits.backend import Backend
from synth.engines.gptsovits.batching import ContinuousDecoder, DecodeRequest
from synth.engines.gptsovits.vocoder import ChunkedVocoder, ChunkPolicy, frame_noise, vocode_batch


@dataclasses.dataclass(frozen=True, eq=False)
class Utterance:
    decode: DecodeRequest  # what the autoregressive stage reads
    phones: np.ndarray  # int64, the text's own phones (the decoder does not see the prompt transcript)
    timbre: np.ndarray  # float32 [gin]
    noise_seed: int = 0
    noise_scale: float = 0.5


@dataclasses.dataclass(frozen=True, eq=False)
class AudioEvent:
    row: int
    audio: np.ndarray  # float32 at the backend's sample rate; may be empty on the final event
    finished: bool


class ContinuousSynthesizer:
    def __init__(self, backend: Backend, max_batch: int = 8, policy: ChunkPolicy | None = None) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self.policy = policy or ChunkPolicy()
        self.decoder = ContinuousDecoder(backend, max_batch=max_batch)
        self._vocoders: dict[int, ChunkedVocoder] = {}
        self._ended: set[int] = set()

    def submit(self, utterance: Utterance) -> int:
        rid = self.decoder.submit(utterance.decode)
        noise = frame_noise(utterance.noise_seed, self.backend.dims.inter_channels, utterance.noise_scale)
        self._vocoders[rid] = ChunkedVocoder(self.backend, utterance.phones, utterance.timbre, noise, self.policy)
        return rid

    def cancel(self, rid: int) -> None:
        self.decoder.cancel(rid)
        self._vocoders.pop(rid, None)
        self._ended.discard(rid)

    def has_work(self) -> bool:
        return bool(self._vocoders)

    def step(self) -> list[AudioEvent]:
        for event in self.decoder.step():
            vocoder = self._vocoders.get(event.row)
            if vocoder is None:
                continue
            if event.token is not None:
                vocoder.tokens.append(event.token)
            if event.finished:
                self._ended.add(event.row)
        ready = [rid for rid, v in self._vocoders.items() if rid in self._ended or v.due()]
        events: list[AudioEvent] = []
        for i in range(0, len(ready), self.max_batch):
            events += self._render(ready[i : i + self.max_batch])
        return events

    def _render(self, rids: list[int]) -> list[AudioEvent]:
        events = []
        to_render = []
        for rid in rids:
            if self._vocoders[rid].has_remainder():
                to_render.append(rid)
            else:  # ended with nothing left to say
                events.append(AudioEvent(rid, np.zeros(0, np.float32), True))
                self._forget(rid)
        if to_render:
            windows = [self._vocoders[rid].window() for rid in to_render]
            audios = vocode_batch(self.backend, [w for w, _ in windows], [s for _, s in windows])
            for rid, audio in zip(to_render, audios, strict=True):
                final = rid in self._ended
                events.append(AudioEvent(rid, self._vocoders[rid].accept(audio, final), final))
                if final:
                    self._forget(rid)
        return events

    def _forget(self, rid: int) -> None:
        self._vocoders.pop(rid, None)
        self._ended.discard(rid)
