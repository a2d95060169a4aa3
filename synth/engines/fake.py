"""A fake engine for tests, benchmarks of the machinery, and host-app development.

It "speaks" a voiced buzz whose length follows the text (about 80 ms a character), takes
`compute_s_per_audio_s` of wall time per audio second (sleeping, so it costs no CPU),
batches up to `max_batch` clauses, and records every call so tests can see batching.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from synth.engines.base import ClauseRequest, Engine, StockVoice, Voice

SECONDS_PER_CHAR = 0.08


class FakeEngine(Engine):
    name = "fake"
    model_version = "fake-1"
    sample_rate = 24000

    def __init__(
        self, *, max_batch: int = 1, compute_s_per_audio_s: float = 0.2, batch_overhead_s: float = 0.0, threads: int = 0
    ) -> None:
        self.max_batch = max_batch
        self.compute_s_per_audio_s = compute_s_per_audio_s
        self.batch_overhead_s = batch_overhead_s
        self.calls: list[list[str]] = []  # texts of every call, in call order
        self._lock = threading.Lock()
        self._packs = {"buzz": np.zeros((510, 1, 256), np.float32), "hum": np.ones((510, 1, 256), np.float32)}

    def stock_voices(self) -> list[StockVoice]:
        return [StockVoice(name, ("zh", "en", "ja")) for name in sorted(self._packs)]

    def stock_voice(self, name: str) -> Voice:
        return Voice(id=f"stock:{name}", engine=self.name, params=self._packs[name])

    def render(self, clause: ClauseRequest) -> np.ndarray:
        seconds = max(0.2, SECONDS_PER_CHAR * len(clause.text))
        t = np.arange(int(seconds * self.sample_rate)) / self.sample_rate
        pitch = 120.0 + 80.0 * float(np.mean(clause.voice.params))
        syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2  # a syllable-like rise and fall
        return (0.3 * syllables * np.sign(np.sin(2 * np.pi * pitch * t))).astype(np.float32)

    def synthesize_batch(self, clauses: Sequence[ClauseRequest]) -> list[np.ndarray]:
        if len(clauses) > self.max_batch:
            raise ValueError(f"batch of {len(clauses)} over max_batch {self.max_batch}")
        with self._lock:
            self.calls.append([c.text for c in clauses])
        audio = [self.render(c) for c in clauses]
        longest = max(a.size for a in audio) / self.sample_rate
        time.sleep(self.batch_overhead_s + self.compute_s_per_audio_s * longest)
        return audio
