"""Mark synthetic speech and tell whether a clip carries the mark.

`Watermarker.embed` works on one clause chunk at a time (0.3 s to several seconds). It adds
the network's low-band change to the signal and fades that change to zero over the chunk's
first and last few milliseconds, so consecutive chunks join exactly as the unmarked audio
would: no clicks, no state carried between chunks.

One instance is safe to share between threads: the networks are read-only after loading and
the cost counters are updated under a lock. Torch is told to use one intra-op thread.

The mark is yes/no and the detector is public: it labels our output, it is not proof
against someone determined to remove or forge it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from synth.watermark import spectrum
from synth.watermark.network import build_networks, loud_frames
from synth.watermark.resample import resample
from synth.watermark.weights import CHECKPOINT_SHA256, WatermarkWeightsError, load_verified_state

Confidence = Literal["low", "medium", "high"]

MIN_EMBED_SECONDS = 0.1  # shorter chunks are returned unchanged: too few frames to carry a mark
EDGE_FADE_SECONDS = 0.01  # the mark fades in and out over this much at each chunk edge
SCORE_THRESHOLD = 0.5  # decoder score at or above which a clip is called watermarked
DETECT_WINDOW_SECONDS = 20.0  # long clips are scored in windows of about this length
# After Opus, 1-4 % of one-second and 1-2 % of two-second clips of human speech score as marked,
# none of 3-5 s (bench/watermark.py): below this much audible audio the answer has low confidence.
MIN_CONFIDENT_SECONDS = 2.0
HIGH_CONFIDENCE_SECONDS = 3.0
HIGH_CONFIDENCE_MARGIN = 0.3  # this far from the threshold, on enough audio: high confidence


class WatermarkInputError(ValueError):
    """The PCM handed to embed/detect is not mono finite audio at a positive rate."""


@dataclasses.dataclass(frozen=True)
class Detection:
    watermarked: bool
    score: float  # 0..1; SCORE_THRESHOLD separates marked from unmarked
    seconds_analysed: float  # audio the decoder weighed (frames under 5 % of the loudest, e.g. silence, excluded)
    confidence: Confidence

    def as_json(self) -> dict[str, object]:
        """The HTTP/CLI answer: {"watermarked", "score", "seconds_analysed", "confidence"}."""
        return {
            "watermarked": self.watermarked,
            "score": round(self.score, 3),
            "seconds_analysed": round(self.seconds_analysed, 2),
            "confidence": self.confidence,
        }


@dataclasses.dataclass(frozen=True)
class EmbedStats:
    """Running totals, for /metrics: embed cost per chunk and per second of audio."""

    chunks: int
    audio_seconds: float
    cpu_seconds: float
    last_chunk_seconds: float

    @property
    def real_time_factor(self) -> float:
        return self.cpu_seconds / self.audio_seconds if self.audio_seconds else 0.0


def _edge_fade(length: int, fade: int) -> np.ndarray:
    """1.0 in the middle, raised-cosine ramps from 0 over `fade` samples at both ends."""
    gain = np.ones(length, dtype=np.float32)
    fade = min(fade, length // 2)
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade, dtype=np.float32) + 0.5) / fade)
        gain[:fade] = ramp
        gain[length - fade :] = ramp[::-1]
    return gain


def _checked_pcm(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise WatermarkInputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    array = np.asarray(pcm)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise WatermarkInputError(f"expected mono PCM (1-D), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise WatermarkInputError(f"expected float PCM in [-1, 1], got {array.dtype}")
    array = np.require(array, dtype=np.float32, requirements=["C", "W"])  # torch wants writable memory
    if not np.isfinite(array).all():
        raise WatermarkInputError("PCM contains NaN or infinite samples")
    return array


class Watermarker:
    def __init__(
        self,
        weights_path: Path | None = None,
        expected_sha256: str = CHECKPOINT_SHA256,
        torch_threads: int = 1,
        on_embed: Callable[[float, float], None] | None = None,
    ) -> None:
        """`on_embed(cpu_seconds, audio_seconds)` runs after each marked chunk (e.g. to feed /metrics)."""
        # Process-wide, but the service keeps torch single-threaded everywhere (2 cores, many users).
        torch.set_num_threads(torch_threads)
        state = load_verified_state(weights_path, expected_sha256)
        try:
            self._encoder, self._decoder = build_networks(state)
        except RuntimeError as exc:
            raise WatermarkWeightsError(f"Watermark weights do not fit the network: {exc}") from exc
        self._lock = threading.Lock()
        self._chunks = 0
        self._audio_seconds = 0.0
        self._cpu_seconds = 0.0
        self._last_chunk_seconds = 0.0
        self._on_embed = on_embed

    def embed(self, pcm: np.ndarray, sample_rate: int) -> np.ndarray:
        """`pcm` with the mark added: same length, rate and dtype (float32), clipped to [-1, 1]."""
        pcm = _checked_pcm(pcm, sample_rate)
        if pcm.size < MIN_EMBED_SECONDS * sample_rate:
            return pcm.copy()
        started = time.thread_time()
        mark = self._mark_signal(pcm, sample_rate)
        mark *= _edge_fade(pcm.size, int(EDGE_FADE_SECONDS * sample_rate))
        marked = np.clip(pcm + mark, -1.0, 1.0)
        self._count(time.thread_time() - started, pcm.size / sample_rate)
        return marked

    def detect(self, pcm: np.ndarray, sample_rate: int) -> Detection:
        """Whether `pcm` carries the mark. Long clips are scored in windows (bounded memory),
        and the window scores averaged by how much audible audio each held."""
        pcm = _checked_pcm(pcm, sample_rate)
        if pcm.size < MIN_EMBED_SECONDS * sample_rate or not np.any(pcm):
            return Detection(False, 0.0, 0.0, "low")
        signal = resample(pcm, sample_rate, spectrum.SAMPLE_RATE)
        windows = max(1, round(signal.size / (DETECT_WINDOW_SECONDS * spectrum.SAMPLE_RATE)))
        scores, weights = [], []
        for window in np.array_split(signal, windows):
            score, loud = self._score_window(window)
            scores.append(score)
            weights.append(loud)
        total = sum(weights)
        score = float(np.average(scores, weights=weights)) if total else 0.0
        seconds = spectrum.frames_to_seconds(total)
        return Detection(score >= SCORE_THRESHOLD, score, seconds, _confidence(score, seconds))

    def _score_window(self, signal: np.ndarray) -> tuple[float, int]:
        """(decoder score clipped to 0..1, loud frames) for one stretch of 32 kHz audio."""
        with torch.inference_mode():
            scaled = spectrum.to_scaled_db(spectrum.stft(torch.from_numpy(signal)).abs())[None]
            score = float(self._decoder(scaled).clamp(0.0, 1.0)[0])
            loud = int(loud_frames(scaled).sum())
        return score, loud

    def stats(self) -> EmbedStats:
        with self._lock:
            return EmbedStats(self._chunks, self._audio_seconds, self._cpu_seconds, self._last_chunk_seconds)

    def _mark_signal(self, pcm: np.ndarray, sample_rate: int) -> np.ndarray:
        """The additive mark for `pcm`, at the caller's rate."""
        signal = torch.from_numpy(resample(pcm, sample_rate, spectrum.SAMPLE_RATE))
        with torch.inference_mode():
            spec = spectrum.stft(signal)
            magnitude = spec.abs()
            scaled = spectrum.to_scaled_db(magnitude)
            change = self._encoder(scaled[None])[0]
            band = slice(0, spectrum.MARK_BINS)
            # Keep each bin's phase, move its magnitude: the difference spectrum is zero above 2 kHz.
            new_magnitude = spectrum.from_scaled_db(scaled[band] + change)
            old_magnitude = spectrum.from_scaled_db(scaled[band])
            phase = torch.polar(torch.ones_like(magnitude[band]), spec[band].angle())
            difference = torch.zeros_like(spec)
            difference[band] = (new_magnitude - old_magnitude) * phase
            mark = spectrum.istft(difference, length=signal.numel()).numpy()
        return resample(mark, spectrum.SAMPLE_RATE, sample_rate)[: pcm.size]

    def _count(self, cpu_seconds: float, audio_seconds: float) -> None:
        with self._lock:
            self._chunks += 1
            self._audio_seconds += audio_seconds
            self._cpu_seconds += cpu_seconds
            self._last_chunk_seconds = cpu_seconds
        if self._on_embed is not None:
            self._on_embed(cpu_seconds, audio_seconds)


def _confidence(score: float, seconds: float) -> Confidence:
    if seconds < MIN_CONFIDENT_SECONDS:
        return "low"
    if seconds >= HIGH_CONFIDENCE_SECONDS and abs(score - SCORE_THRESHOLD) >= HIGH_CONFIDENCE_MARGIN:
        return "high"
    return "medium"
