"""Fixtures for the voice-fit tests: a real recording's FitTarget and the real Kokoro graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from synth.audio_io import decode_audio
from synth.enroll import features, quality
from synth.enroll.contract import FitTarget

VOICES = Path(__file__).resolve().parents[1] / "data" / "voices"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def english_target() -> FitTarget:
    """Features of a real English recording (LibriSpeech speaker 1998), as enrollment extracts them."""
    pcm = decode_audio((VOICES / "en_1998_enroll.wav").read_bytes(), sample_rate=24000)
    _, analysis = quality.assess(pcm[: 12 * 24000])
    return features.extract(analysis, "en")


@pytest.fixture(scope="session")
def start_pack() -> np.ndarray:
    from synth.fit.stock import stock_packs

    return stock_packs()["jf_alpha"].copy()


@pytest.fixture(scope="session")
def warm_fit() -> None:
    """Everything a fit loads once per process, loaded, as the fit worker does when it starts (synth.fit.warm_up).
    A fit's CPU budget counts what it loads itself, so a test with a small budget, run alone, took no step at all:
    it passed only after another test had fitted."""
    from synth.fit.warm_up import warm_up

    warm_up(("en",))
