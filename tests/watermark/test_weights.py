from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synth.watermark import Watermarker, WatermarkWeightsError
from synth.watermark.weights import CHECKPOINT_SHA256, default_checkpoint_path, sha256_of


def test_installed_weights_match_the_pinned_hash() -> None:
    assert sha256_of(default_checkpoint_path()) == CHECKPOINT_SHA256


def test_tampered_weights_fail_closed(tmp_path: Path) -> None:
    tampered = tmp_path / "weights.pth.tar"
    shutil.copyfile(default_checkpoint_path(), tampered)
    with tampered.open("r+b") as handle:  # flip one byte deep inside a tensor
        handle.seek(20_000_000)
        byte = handle.read(1)
        handle.seek(20_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WatermarkWeightsError, match="SHA-256"):
        Watermarker(weights_path=tampered)


def test_missing_weights_fail_closed(tmp_path: Path) -> None:
    with pytest.raises(WatermarkWeightsError, match="not found"):
        Watermarker(weights_path=tmp_path / "absent.pth.tar")


def test_a_different_pinned_hash_is_refused() -> None:
    with pytest.raises(WatermarkWeightsError, match="refusing"):
        Watermarker(expected_sha256="0" * 64)
