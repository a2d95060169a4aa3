"""Decode an uploaded recording (WAV, Ogg/Opus, WebM/Opus, MP3) to mono float32 PCM with PyAV.

Every way a file can be wrong becomes an `AudioDecodeError` with a message a person
can act on; the HTTP layer maps it to a 4xx, never a 500.
"""

from __future__ import annotations

import io

import av
import numpy as np

# Container formats we accept, as FFmpeg names them (a demuxer may list several names).
ACCEPTED_FORMATS = {"wav", "ogg", "matroska", "webm", "mp3"}
ACCEPTED_CONTENT_TYPES = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/webm": "webm",
    "video/webm": "webm",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


class AudioDecodeError(ValueError):
    """The bytes are not a recording we can use."""


def decode_audio(
    data: bytes,
    *,
    sample_rate: int = 16000,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode `data` to mono float32 in [-1, 1] at `sample_rate`.

    Stops reading past `max_seconds` (plus a little) so a huge upload costs bounded work,
    and raises AudioDecodeError when the recording is longer than that.
    """
    if not data:
        raise AudioDecodeError("The file is empty.")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise AudioDecodeError("The file is not a recording we can read (use WAV, Ogg/Opus, WebM or MP3).") from exc
    with container:
        format_names = set(container.format.name.split(","))
        if not format_names & ACCEPTED_FORMATS:
            raise AudioDecodeError(
                f"Unsupported file type ({container.format.long_name}); use WAV, Ogg/Opus, WebM or MP3."
            )
        if not container.streams.audio:
            raise AudioDecodeError("The file has no audio track.")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        limit = None if max_seconds is None else int((max_seconds + 1.0) * sample_rate)
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if limit is not None and total > limit:
                    raise AudioDecodeError(
                        f"The recording is longer than {max_seconds:.0f} seconds; please keep it shorter."
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise AudioDecodeError("The file is damaged and could not be decoded to the end.") from exc
    if not chunks:
        raise AudioDecodeError("The file contains no audio samples.")
    pcm = np.concatenate(chunks).astype(np.float32, copy=False)
    return np.clip(pcm, -1.0, 1.0)
