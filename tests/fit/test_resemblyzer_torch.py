"""The differentiable Resemblyzer embedding against the enrollment voiceprint (numpy, 16 kHz)."""

from __future__ import annotations

import numpy as np
import torch

from synth.audio_io import decode_audio
from synth.enroll import speech, voiceprint
from synth.fit import resemblyzer_torch

from .conftest import VOICES


def test_same_embedding_as_the_enrollment_voiceprint() -> None:
    pcm = decode_audio((VOICES / "zh_S0765_enroll.wav").read_bytes(), sample_rate=24000)
    ours = resemblyzer_torch.embed_numpy(pcm)
    theirs = voiceprint.embed(speech.to_16k(pcm, 24000))
    assert abs(float(np.linalg.norm(ours)) - 1.0) < 1e-4
    assert float(ours @ theirs) > 0.99


def test_embedding_has_a_gradient() -> None:
    pcm = decode_audio((VOICES / "zh_S0765_probe.wav").read_bytes(), sample_rate=24000)
    wav = torch.from_numpy(pcm).requires_grad_(True)
    resemblyzer_torch.embed(wav).sum().backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all() and wav.grad.abs().sum() > 0
