"""Detection on an uploaded file (WAV, Ogg/Opus, WebM, MP3): decode, then score."""

from __future__ import annotations

import threading

from synth.audio_io import decode_audio
from synth.watermark import spectrum
from synth.watermark.watermarker import Detection, Watermarker

MAX_FILE_SECONDS = 300.0  # longer uploads are refused by the decoder (AudioDecodeError)

_shared: Watermarker | None = None
_shared_lock = threading.Lock()


def _shared_watermarker() -> Watermarker:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Watermarker()
        return _shared


def detect_file(
    data: bytes,
    watermarker: Watermarker | None = None,
    max_seconds: float = MAX_FILE_SECONDS,
) -> Detection:
    """Whether the recording in `data` carries the mark; AudioDecodeError when it is unusable."""
    # Decode straight to the network's rate so the audio is resampled once.
    pcm = decode_audio(data, sample_rate=spectrum.SAMPLE_RATE, max_seconds=max_seconds)
    return (watermarker or _shared_watermarker()).detect(pcm, spectrum.SAMPLE_RATE)
