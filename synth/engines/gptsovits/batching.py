"""Continuous batching of the autoregressive stage.

Rows (one utterance each, any voice, any length) are submitted at any time; each `step()`
first admits waiting rows (prefilled together), then advances every row already running
by one token. A row that samples EOS, or reaches its token limit, leaves the batch at
once and its cache slots go to the next row. Sampling is per row on the host with its
own seeded random stream, so a row's tokens do not depend on what it is batched with.

The cache is one pair of arrays per layer, keys [rows, H, hd, T] and values [rows, H, T, hd],
with the live rows packed at the front so the runtime reads `array[:n]` in place. Its
time capacity grows in steps of `SLOT_BLOCK` and a per-row mask marks the real slots.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque

import numpy as np

from synth.engines.gptsovits.backend import Backend
from synth.engines.gptsovits.sampling import SamplingParams, next_token
from synth.engines.gptsovits.t2s import BERT_DIM

SLOT_BLOCK = 64
NEG = -1e9


@dataclasses.dataclass(frozen=True, eq=False)
class DecodeRequest:
    phones: np.ndarray  # int64 [Tx]: prompt transcript phones followed by the text's phones
    prompt_tokens: np.ndarray  # int64 [Ty]: the voice's semantic prompt (may be empty)
    params: SamplingParams = SamplingParams()
    bert: np.ndarray | None = None  # float32 [1024, Tx], or None for zeros

    def __post_init__(self) -> None:
        if self.phones.ndim != 1 or len(self.phones) == 0:
            raise ValueError("a decode request needs at least one phone")
        if self.bert is not None and self.bert.shape != (BERT_DIM, len(self.phones)):
            raise ValueError(f"bert features must be [{BERT_DIM}, {len(self.phones)}]")


@dataclasses.dataclass(frozen=True)
class TokenEvent:
    row: int
    token: int | None  # None when the row ended without a new token (EOS)
    finished: bool


@dataclasses.dataclass(eq=False)
class _Row:
    rid: int
    request: DecodeRequest
    rng: np.random.Generator
    history: list[int]  # prompt tokens + generated tokens
    generated: int = 0
    used: int = 0  # cache slots taken (including padding holes)
    done: bool = False

    @property
    def position(self) -> int:
        """Index of the last sampled token among the row's semantic tokens."""
        return len(self.history) - 1


class ContinuousDecoder:
    def __init__(self, backend: Backend, max_batch: int = 8) -> None:
        self.backend = backend
        self.max_batch = max_batch
        d = backend.dims
        self._shape = (d.heads, d.head_dim)
        self._capacity = 0
        self._keys: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._valid = np.zeros((max_batch, 0), bool)
        self._rows: list[_Row] = []  # live rows, index = cache row
        self._waiting: deque[_Row] = deque()
        self._ids = itertools.count()
        self._grow(SLOT_BLOCK)

    # --- public --------------------------------------------------------------------------

    def submit(self, request: DecodeRequest) -> int:
        """Queue a row; it joins the batch at the next `step()`. Returns its id."""
        rid = next(self._ids)
        history = [int(t) for t in request.prompt_tokens]
        self._waiting.append(_Row(rid, request, np.random.default_rng(request.params.seed), history))
        return rid

    def cancel(self, rid: int) -> None:
        self._waiting = deque(r for r in self._waiting if r.rid != rid)
        for row in self._rows:
            if row.rid == rid:
                row.done = True
        self._compact()

    @property
    def active(self) -> int:
        return len(self._rows)

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def has_work(self) -> bool:
        return bool(self._rows or self._waiting)

    def step(self) -> list[TokenEvent]:
        running = len(self._rows)
        events = self._admit()
        if running:
            events += self._advance(running)
        self._compact()
        return events

    # --- internals -----------------------------------------------------------------------

    def _admit(self) -> list[TokenEvent]:
        rows: list[_Row] = []
        while self._waiting and len(self._rows) + len(rows) < self.max_batch:
            rows.append(self._waiting.popleft())
        if not rows:
            return []
        tx = max(len(r.request.phones) for r in rows)
        ty = max(len(r.request.prompt_tokens) for r in rows)
        phones = np.zeros((len(rows), tx), np.int64)
        bert = np.zeros((len(rows), BERT_DIM, tx), np.float32)
        prompt = np.zeros((len(rows), ty), np.int64)
        for j, r in enumerate(rows):
            phones[j, : len(r.request.phones)] = r.request.phones
            prompt[j, : len(r.request.prompt_tokens)] = r.request.prompt_tokens
            if r.request.bert is not None:
                bert[j, :, : len(r.request.phones)] = r.request.bert
        phone_lens = np.array([len(r.request.phones) for r in rows], np.int64)
        prompt_lens = np.array([len(r.request.prompt_tokens) for r in rows], np.int64)
        logits, keys, values, valid = self.backend.prefill(phones, phone_lens, bert, prompt, prompt_lens)

        slots = tx + ty
        self._ensure_capacity(slots + 1)
        events = []
        for j, row in enumerate(rows):
            i = len(self._rows)
            for layer in range(len(self._keys)):
                self._keys[layer][i, :, :, :slots] = keys[j, layer]
                self._values[layer][i, :, :slots] = values[j, layer]
            self._valid[i] = False
            self._valid[i, :slots] = valid[j]
            row.used = slots
            self._rows.append(row)
            events.append(self._sample(row, logits[j]))
        return events

    def _advance(self, n: int) -> list[TokenEvent]:
        rows = self._rows[:n]
        self._ensure_capacity(max(r.used for r in rows) + 1)
        tokens = np.array([r.history[-1] for r in rows], np.int64)
        positions = np.array([r.position for r in rows], np.int64)
        mask_bias = np.where(self._valid[:n], 0.0, NEG).astype(np.float32)
        caches = [a[:n] for pair in zip(self._keys, self._values, strict=True) for a in pair]
        logits, new_k, new_v = self.backend.step(tokens, positions, mask_bias, caches)
        events = []
        for i, row in enumerate(rows):
            slot = row.used
            for layer in range(len(self._keys)):
                self._keys[layer][i, :, :, slot] = new_k[i, layer]
                self._values[layer][i, :, slot] = new_v[i, layer]
            self._valid[i, slot] = True
            row.used += 1
            events.append(self._sample(row, logits[i]))
        return events

    def _sample(self, row: _Row, logits: np.ndarray) -> TokenEvent:
        params, eos = row.request.params, self.backend.dims.eos
        token = next_token(logits, np.asarray(row.history, np.int64), row.generated, params, eos, row.rng)
        may_stop = row.generated >= params.min_tokens
        if may_stop and (token == eos or int(np.argmax(logits)) == eos):
            row.done = True
            return TokenEvent(row.rid, None, True)
        row.history.append(token)
        row.generated += 1
        row.done = row.generated >= params.max_tokens
        return TokenEvent(row.rid, token, row.done)

    def _compact(self) -> None:
        """Drop finished rows, moving the last live rows into their cache rows."""
        i = 0
        while i < len(self._rows):
            if not self._rows[i].done:
                i += 1
                continue
            last = len(self._rows) - 1
            if i != last:
                for arrays in (self._keys, self._values):
                    for a in arrays:
                        a[i] = a[last]
                self._valid[i] = self._valid[last]
                self._rows[i] = self._rows[last]
            self._rows.pop()

    def _ensure_capacity(self, slots: int) -> None:
        if slots > self._capacity:
            self._grow(-(-slots // SLOT_BLOCK) * SLOT_BLOCK)

    def _grow(self, capacity: int) -> None:
        d = self.backend.dims
        heads, hd = self._shape
        keys = [np.zeros((self.max_batch, heads, hd, capacity), np.float32) for _ in range(d.n_layer)]
        values = [np.zeros((self.max_batch, heads, capacity, hd), np.float32) for _ in range(d.n_layer)]
        valid = np.zeros((self.max_batch, capacity), bool)
        old = self._capacity
        for new, cur in zip(keys, self._keys, strict=False):
            new[..., :old] = cur
        for new, cur in zip(values, self._values, strict=False):
            new[:, :, :old] = cur
        valid[:, :old] = self._valid
        self._keys, self._values, self._valid, self._capacity = keys, values, valid, capacity


def decode_all(backend: Backend, requests: list[DecodeRequest], max_batch: int = 8) -> list[list[int]]:
    """Decode every request to its semantic tokens (EOS excluded), batching as it goes."""
    decoder = ContinuousDecoder(backend, max_batch=max_batch)
    ids = [decoder.submit(r) for r in requests]
    out: dict[int, list[int]] = {rid: [] for rid in ids}
    while decoder.has_work():
        for event in decoder.step():
            if event.token is not None:
                out[event.row].append(event.token)
    return [out[rid] for rid in ids]
