"""The differentiable DNSMOS (synth.fit.quality_torch) against the ONNX Runtime scorer the guards use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth.enroll import dnsmos, render, speech
from synth.fit import quality_torch


@pytest.fixture(scope="module")
def speech_24k() -> np.ndarray:
    return render.render(render.stock_packs()["jf_alpha"], "en")


def test_the_resampler_agrees_with_soxr(speech_24k: np.ndarray) -> None:
    ours = quality_torch.to_16k(torch.from_numpy(speech_24k)).numpy()
    reference = speech.to_16k(speech_24k, 24000)
    assert abs(ours.size - reference.size) <= 1
    n = min(ours.size, reference.size)
    error = np.sqrt(np.mean((ours[:n] - reference[:n]) ** 2)) / np.sqrt(np.mean(reference[:n] ** 2))
    assert error < 0.03


@pytest.mark.slow
def test_the_score_matches_onnx_runtime_and_has_a_gradient(speech_24k: np.ndarray) -> None:
    audio = torch.tensor(speech_24k, requires_grad=True)
    score = quality_torch.overall(audio)
    score.backward()
    assert abs(float(score.detach()) - dnsmos.score(speech.to_16k(speech_24k, 24000), max_windows=1).ovrl) < 0.08
    assert audio.grad is not None and torch.isfinite(audio.grad).all() and float(audio.grad.norm()) > 0
    # Noise added to the speech must score worse through the same path.
    noisy = torch.from_numpy(speech_24k + np.random.default_rng(0).normal(0, 0.05, speech_24k.shape).astype(np.float32))
    assert float(quality_torch.overall(noisy)) < float(score.detach()) - 0.3
