from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import soundfile as sf

from synth.audio_io import AudioDecodeError
from synth.watermark import Watermarker, detect_file

ENGINE_RATE = 24000


def _png_bytes() -> bytes:
    """A valid 1x1 grey PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")
    )


BAD_FILES = {
    "empty": b"",
    "garbage": np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "text": "これは音声ではありません。This is a text file, not audio.\n".encode() * 20,
    "png": _png_bytes(),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_are_refused(watermarker: Watermarker, name: str) -> None:
    with pytest.raises(AudioDecodeError):
        detect_file(BAD_FILES[name], watermarker)


def test_marked_wav_file_is_detected(watermarker: Watermarker, kokoro_speech: np.ndarray) -> None:
    for pcm, expected in ((kokoro_speech, False), (watermarker.embed(kokoro_speech, ENGINE_RATE), True)):
        buffer = io.BytesIO()
        sf.write(buffer, pcm, ENGINE_RATE, format="WAV", subtype="PCM_16")
        assert detect_file(buffer.getvalue(), watermarker).watermarked is expected
