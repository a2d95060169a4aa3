"""Host-side sampling of the next semantic token, one row at a time.

Runs on the host, not in the exported graph, so every row of a batch can have its own
parameters and its own random stream: a row samples the same tokens whether it decodes
alone or beside others. Order of operations as in the official sampler: repetition
penalty, top-p, temperature, top-k, then a draw from the softmax.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    min_tokens: int = 11  # EOS is masked until this many tokens were generated
    max_tokens: int = 1500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 1 or not 0.0 < self.top_p <= 1.0 or self.temperature <= 0.0:
            raise ValueError("top_k >= 1, 0 < top_p <= 1 and temperature > 0 are required")
        if self.repetition_penalty <= 0 or self.min_tokens < 0 or self.max_tokens < max(1, self.min_tokens):
            raise ValueError("repetition_penalty > 0 and 0 <= min_tokens <= max_tokens are required")


def next_token(
    logits: np.ndarray,  # [V] float
    history: np.ndarray,  # prompt tokens and tokens generated so far (int)
    generated: int,
    params: SamplingParams,
    eos: int,
    rng: np.random.Generator,
) -> int:
    scores = logits.astype(np.float64, copy=True)
    if generated < params.min_tokens:
        scores[eos] = -np.inf
    if params.repetition_penalty != 1.0 and history.size:
        seen = np.unique(history)
        picked = scores[seen]
        scores[seen] = np.where(picked < 0, picked * params.repetition_penalty, picked / params.repetition_penalty)
    if params.top_p < 1.0:
        order = np.argsort(-scores, kind="stable")
        probs = _softmax(scores[order])
        remove = np.cumsum(probs) > params.top_p
        remove[0] = False
        scores[order[remove]] = -np.inf
    scores = scores / max(params.temperature, 1e-5)
    if params.top_k < scores.size:
        pivot = np.partition(scores, -params.top_k)[-params.top_k]
        scores[scores < pivot] = -np.inf
    probs = _softmax(scores)
    # Exponential race: argmax(p / E) with E ~ Exp(1) is a draw from p.
    return int(np.argmax(probs / rng.exponential(size=probs.size)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()
