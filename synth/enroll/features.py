"""Turn a gated recording into the `FitTarget` the voice fit works from (features only, no audio)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from synth.enroll import speech, voiceprint
from synth.enroll.contract import LANGUAGE_HINTS, FitTarget
from synth.enroll.quality import Analysis

RATE = 24000
N_FFT = 1024
HOP = 256
N_MELS = 80
# The noise floor of a band: this percentile of its mel magnitude over the whole recording (its pauses, where
# the room's noise is what is left), digital silence (joined clips) left out.
NOISE_PERCENTILE = 5
# Seconds of speech the pitch statistics are taken from (Harvest's cost grows with it; a minute is plenty).
F0_MAX_SPEECH_S = 60.0


@functools.cache
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=RATE / 2).astype(np.float32)


def log_mel_24k(pcm24k: np.ndarray) -> np.ndarray:
    """[frames, 80] natural-log mel magnitude (Hann, n_fft 1024, hop 256, centred, floor 1e-5).

    The fit must compute the same on its renders for the statistics to be comparable.
    """
    import librosa

    spec = np.abs(librosa.stft(pcm24k.astype(np.float32), n_fft=N_FFT, hop_length=HOP, window="hann", center=True))
    return np.log(np.maximum(_mel_basis() @ spec, 1e-5)).T.astype(np.float32)


@functools.cache
def _world():  # type: ignore[no-untyped-def]
    """WORLD's compiled module from the pyworld wheel.

    Loaded directly because the package's __init__ needs pkg_resources, which current
    setuptools no longer ships; the compiled module itself needs nothing.
    """
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("pyworld")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("F0 analysis needs the 'pyworld' package: pip install pyworld")
    folder = Path(next(iter(spec.submodule_search_locations)))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / ("pyworld" + suffix)
        if path.is_file():
            ext_spec = importlib.util.spec_from_file_location("pyworld", path)
            assert ext_spec is not None and ext_spec.loader is not None
            module = importlib.util.module_from_spec(ext_spec)
            ext_spec.loader.exec_module(module)
            return module
    raise RuntimeError(f"pyworld's compiled module is missing from {folder}")


def f0_stats(pcm24k: np.ndarray) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile of voiced F0 in Hz (WORLD's Harvest, at 16 kHz); zeros if unvoiced.

    Harvest rather than WORLD's faster DIO: on a recording with low-frequency rumble (zh_THCHS30-D4, a hum below
    80 Hz) DIO found 6% of the speech voiced and a median of 298 Hz where the harmonics say about 200 Hz, and the fit
    then raised the voice's pitch by half; on the other eight reference speakers the two agree within 6%. Harvest
    costs about 0.2 CPU-s per second of speech, so at most F0_MAX_SPEECH_S of it is analysed.
    """
    pyworld = _world()
    pcm16k = speech.to_16k(pcm24k[: int(F0_MAX_SPEECH_S * RATE)], RATE)
    x = np.ascontiguousarray(pcm16k, dtype=np.float64)
    f0, _times = pyworld.harvest(x, speech.RATE, f0_floor=60.0, f0_ceil=500.0, frame_period=10.0)
    voiced = f0[f0 > 0]
    if voiced.size < 10:
        return 0.0, 0.0, 0.0
    p10, median, p90 = np.percentile(voiced, [10, 50, 90])
    return float(median), float(p10), float(p90)


def speech_24k(analysis: Analysis) -> np.ndarray:
    """The recording at 24 kHz, speech frames only.

    Taken before noise suppression: WebRTC's suppressor works at 16 kHz and would leave the
    8-12 kHz band empty, which the fit would then copy into the voice.
    """
    mask = speech.frame_mask_to_samples(analysis.speech_flags, analysis.clean16k.size)
    # Each 16 kHz sample index i covers 24 kHz samples 1.5 * i .. 1.5 * (i + 1).
    index = (np.arange(analysis.pcm24k.size) * speech.RATE) // RATE
    index = np.minimum(index, mask.size - 1)
    return analysis.pcm24k[mask[index]]


def extract(analysis: Analysis, language_hint: str = "unknown", *, with_noise_floor: bool = False) -> FitTarget:
    """The fit's target. `with_noise_floor` adds the recording's noise floor, which only the experimental
    `FitSettings.spectrum_in_room` reads: enrollment leaves it out, so it is neither computed nor stored."""
    if language_hint not in LANGUAGE_HINTS:
        raise ValueError(f"language hint must be one of {LANGUAGE_HINTS}")
    voiced24k = speech_24k(analysis)
    logmel = log_mel_24k(voiced24k)
    median, p10, p90 = f0_stats(voiced24k)
    segments = analysis.segment_voiceprints
    if segments.shape[0] == 0:
        segments = voiceprint.embed(analysis.speech16k())[None]
    return FitTarget(
        voiceprint=voiceprint.embed(analysis.speech16k()),
        segment_voiceprints=segments.astype(np.float32),
        logmel_mean=logmel.mean(axis=0),
        logmel_std=logmel.std(axis=0),
        f0_median_hz=median,
        f0_p10_hz=p10,
        f0_p90_hz=p90,
        language_hint=language_hint,
        noise_mel=noise_floor(analysis.pcm24k) if with_noise_floor else None,
    )


def noise_floor(pcm24k: np.ndarray) -> np.ndarray:
    """[80] the recording's noise floor per mel band (magnitude), from its quietest frames."""
    logmel = log_mel_24k(pcm24k)
    live = logmel.mean(axis=1) > np.log(1e-5) + 1.0  # not digital silence
    frames = logmel[live] if live.sum() >= 20 else logmel
    return np.percentile(np.exp(frames), NOISE_PERCENTILE, axis=0).astype(np.float32)
