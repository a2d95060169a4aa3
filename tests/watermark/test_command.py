from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.watermark import Watermarker, detect_command, watermark_chunk_filter

ENGINE_RATE = 24000


def _wav(path: Path, pcm: np.ndarray) -> Path:
    sf.write(path, pcm, ENGINE_RATE, subtype="PCM_16")
    return path


def test_detect_command_exit_status_and_output(
    tmp_path: Path, watermarker: Watermarker, kokoro_speech: np.ndarray
) -> None:
    marked = _wav(tmp_path / "marked.wav", watermarker.embed(kokoro_speech, ENGINE_RATE))
    clean = _wav(tmp_path / "clean.wav", kokoro_speech)
    out = io.StringIO()
    assert detect_command(marked, watermarker=watermarker, out=out) == 0
    assert "made by Voxroom" in out.getvalue()
    out = io.StringIO()
    assert detect_command(clean, as_json=True, watermarker=watermarker, out=out) == 1
    answer = json.loads(out.getvalue())
    assert answer["watermarked"] is False
    assert set(answer) == {"watermarked", "score", "seconds_analysed", "confidence"}


def test_detect_command_refuses_unusable_files(tmp_path: Path, watermarker: Watermarker) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n" * 50)
    for path in (text, tmp_path / "missing.wav"):
        err = io.StringIO()
        assert detect_command(path, watermarker=watermarker, out=io.StringIO(), err=err) == 2
        assert str(path) in err.getvalue()


def test_chunk_filter_marks_when_on(kokoro_speech: np.ndarray) -> None:
    seen: list[float] = []
    chunk_filter, watermarker = watermark_chunk_filter(True, on_embed=lambda cpu, audio: seen.append(audio))
    assert chunk_filter is not None and watermarker is not None
    marked = chunk_filter(kokoro_speech, ENGINE_RATE)
    assert watermarker.detect(marked, ENGINE_RATE).watermarked
    assert seen == [pytest.approx(kokoro_speech.size / ENGINE_RATE)]


def test_chunk_filter_off_is_logged_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert watermark_chunk_filter(False) == (None, None)
    assert any(r.levelno == logging.WARNING and "WATERMARK OFF" in r.getMessage() for r in caplog.records)
