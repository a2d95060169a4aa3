import numpy as np
import pytest

from synth.engines.gptsovits.backend import TorchBackend
from synth.engines.gptsovits.batching import ContinuousDecoder, DecodeRequest, decode_all
from synth.engines.gptsovits.sampling import SamplingParams


def _requests(n: int, min_tokens: int = 12, max_tokens: int = 20) -> list[DecodeRequest]:
    rng = np.random.default_rng(7)
    return [
        DecodeRequest(
            rng.integers(1, 732, size=6 + 5 * i),
            rng.integers(0, 1024, size=4 * i),  # row 0 is reference-free (no prompt tokens)
            SamplingParams(seed=i, min_tokens=min_tokens + i, max_tokens=max_tokens + 3 * i, top_k=5 + i),
        )
        for i in range(n)
    ]


def test_cached_step_matches_recomputing_the_whole_prefix(torch_backend: TorchBackend) -> None:
    req = _requests(3)[2]
    tokens = decode_all(torch_backend, [req])[0]
    be = torch_backend
    zeros = np.zeros((1, 1024, len(req.phones)), np.float32)
    lens = np.array([len(req.phones)])
    # Logits after feeding the first k generated tokens through the cache ...
    decoder = ContinuousDecoder(be, max_batch=1)
    decoder.submit(req)
    decoder.step()
    for _ in range(5):
        decoder.step()
    row = decoder._rows[0]
    prefix = np.asarray(row.history[:-1], np.int64)
    logits_cached, *_ = be.step(
        np.array([row.history[-1]]), np.array([row.position]),
        np.where(decoder._valid[:1], 0.0, -1e9).astype(np.float32),
        [a[:1] for pair in zip(decoder._keys, decoder._values, strict=True) for a in pair],
    )  # fmt: skip
    # ... equal those of a fresh prefill over prompt + those tokens.
    full = np.concatenate([prefix, [row.history[-1]]])[None]
    logits_full, *_ = be.prefill(req.phones[None], lens, zeros, full, np.array([full.shape[1]]))
    assert np.abs(logits_cached - logits_full).max() < 1e-4
    assert row.history[len(req.prompt_tokens) :] == tokens[: row.generated]


def test_batched_rows_decode_exactly_as_alone(torch_backend: TorchBackend) -> None:
    requests = _requests(4)
    together = decode_all(torch_backend, requests, max_batch=4)
    alone = [decode_all(torch_backend, [r], max_batch=1)[0] for r in requests]
    assert together == alone
    assert len({tuple(t) for t in together}) == 4  # different voices/seeds give different tokens


def test_rows_join_between_steps_and_leave_at_their_own_end(torch_backend: TorchBackend) -> None:
    requests = _requests(5)
    expected = [decode_all(torch_backend, [r])[0] for r in requests]
    decoder = ContinuousDecoder(torch_backend, max_batch=3)
    got: dict[int, list[int]] = {}
    ids = [decoder.submit(r) for r in requests[:2]]
    steps = 0
    seen_batch = 0
    while decoder.has_work():
        if steps == 3:
            ids += [decoder.submit(r) for r in requests[2:]]  # arrive mid-flight; one must wait for a free row
        for ev in decoder.step():
            if ev.token is not None:
                got.setdefault(ev.row, []).append(ev.token)
        seen_batch = max(seen_batch, decoder.active)
        steps += 1
    assert seen_batch == 3
    assert [got.get(rid, []) for rid in ids] == expected


def test_min_and_max_tokens_bound_every_row(torch_backend: TorchBackend) -> None:
    requests = _requests(3, min_tokens=4, max_tokens=9)
    for tokens, req in zip(decode_all(torch_backend, requests), requests, strict=True):
        assert req.params.min_tokens <= len(tokens) <= req.params.max_tokens
        assert all(0 <= t < 1024 for t in tokens)


def test_bad_sampling_parameters_and_requests_are_refused() -> None:
    with pytest.raises(ValueError):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError):
        SamplingParams(min_tokens=10, max_tokens=5)
    with pytest.raises(ValueError):
        DecodeRequest(np.zeros(0, np.int64), np.zeros(0, np.int64))
