"""The one interface every voice engine implements.

An engine turns clauses of (text, language, voice) into float32 mono PCM at its own
sample rate. It knows nothing of rooms, Opus or policy. Calls are blocking: the
caller (the scheduler) runs them off the event loop. Engines that can batch say so
with `max_batch > 1` and get several clauses per call.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

LANGUAGES = ("zh", "en", "ja")


@dataclasses.dataclass(frozen=True, eq=False)
class Voice:
    """A voice ready to speak: a stock voice or an enrolled, fitted one."""

    id: str  # "stock:NAME" or the owner's account id
    engine: str  # the engine that renders it
    params: Any  # engine-specific (Kokoro: a style pack, float32 [510, 1, 256], one row per token count)
    version: int = 1  # bumped on re-enrollment; part of every cache key
    owner: str | None = None  # account id for an enrolled voice, None for stock
    # FIR taps (synth.voice_colour) that give the output its owner's recorded colour; None for stock voices.
    colour: np.ndarray | None = None
    # Kokoro's per-layer timbre [58, 128] (synth.engines.kokoro_layers) from the voice fit; None for stock voices.
    layers: np.ndarray | None = None
    # Share of a noise suppressor's output (synth.output_denoise, after the colour) in the voice's; set by a fit.
    denoise: float = 0.0

    @property
    def is_stock(self) -> bool:
        return self.owner is None


@dataclasses.dataclass(frozen=True)
class StockVoice:
    name: str
    languages: tuple[str, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class ClauseRequest:
    """One clause to render: already normalised text in one language."""

    text: str
    lang: str
    voice: Voice


class Engine(abc.ABC):
    name: str = "engine"
    model_version: str = "0"
    sample_rate: int = 24000
    max_batch: int = 1
    # True when stream_clause yields a clause's first words before the rest is rendered (not just the whole).
    streams_within_clause: bool = False

    @abc.abstractmethod
    def stock_voices(self) -> list[StockVoice]:
        """The built-in voices this engine offers."""

    @abc.abstractmethod
    def stock_voice(self, name: str) -> Voice:
        """A built-in voice by name; KeyError if there is none."""

    @abc.abstractmethod
    def synthesize_batch(self, clauses: Sequence[ClauseRequest]) -> list[np.ndarray]:
        """Render each clause (len(clauses) <= max_batch); blocking; float32 mono in [-1, 1]."""

    def stream_clause(self, clause: ClauseRequest) -> Iterator[np.ndarray]:
        """Render one clause as successive PCM chunks; engines that can stream inside a clause override."""
        yield self.synthesize_batch([clause])[0]

    def warm_up(self) -> None:  # noqa: B027  (optional hook: engines without a load step keep it empty)
        """Load weights and run once, so the first real request is not the slow one."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Free sessions and threads."""
