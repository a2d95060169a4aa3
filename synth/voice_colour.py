"""A voice's colour: the long-term spectrum of its owner's recording, given to the engine's output.

The fitted style pack moves the engine's timbre, but only as far as the engine's stock voices
reach. What remains between the recording and a render is, on average over speech, a smooth
curve over frequency: the speaker's formant average and the microphone they are heard through
in every call. The fit measures that curve (long-term log-mel over speech frames, recording
against render, `colour_gains`) and synthesis applies it as one linear-phase FIR filter per
voice (`design_filter`, `ColourFilter`), about 1 ms per second of audio.

Measured with `bench/voice_similarity.py` (judge never used here): see README, "Voice fit".
"""

from __future__ import annotations

import functools

import numpy as np

RATE = 24000
TAPS = 257  # 93 Hz resolution at 24 kHz; 5.3 ms of delay, inside the clause's own edge padding
# The curve is kept to the voice's formant band and to mild gains: its edges and strong boosts carry the
# microphone and room as much as the voice, and cost P.835 DNSMOS for little likeness. Measured on the served
# packs of 9 speakers (bench/colour_variants.py, colour_variants_s23_fitted.json), whole curves: 100-7500 Hz
# at +-12 dB gave similarity +0.071 for -0.092 DNSMOS, 250-4000 Hz at +-6 dB +0.078 for -0.027.
MAX_BOOST_DB = 6.0  # no band is raised further than this (before the level is restored) ...
MAX_CUT_DB = 6.0  # ... nor lowered further than this
LOW_HZ = 250.0  # below: hum, rumble and the microphone's proximity boost; the curve is held flat there
TOP_HZ = 4000.0  # above: the microphone, the room's air and often a codec's band limit; held flat too
SMOOTH_BANDS = 3


@functools.cache
def band_centres_hz() -> np.ndarray:
    """Centre frequency of each of the 80 mel bands of `synth.enroll.features.log_mel_24k`."""
    import librosa

    from synth.enroll import features

    return librosa.mel_frequencies(n_mels=features.N_MELS + 2, fmin=0.0, fmax=RATE / 2)[1:-1].astype(np.float64)


def speech_logmel_mean(pcm24k: np.ndarray) -> np.ndarray:
    """Mean log-mel over the speech frames of a render (frames within ~35 dB of the loudest)."""
    from synth.enroll import features

    logmel = features.log_mel_24k(np.asarray(pcm24k, dtype=np.float32))
    level = logmel.mean(axis=1)
    return np.asarray(logmel[level > level.max() - 4.0].mean(axis=0), dtype=np.float64)


def colour_gains(
    recording_logmel_mean: np.ndarray,
    render_logmel_mean: np.ndarray,
    *,
    low_hz: float = LOW_HZ,
    top_hz: float = TOP_HZ,
    max_boost_db: float = MAX_BOOST_DB,
    max_cut_db: float = MAX_CUT_DB,
    smooth_bands: int = SMOOTH_BANDS,
) -> np.ndarray:
    """Natural-log amplitude gain per mel band that takes the render's long-term spectrum to the recording's.

    Level is not part of the colour (it is removed); the bands outside low_hz..top_hz take the
    gain of the nearest band inside; the curve is smoothed over `smooth_bands` bands and clipped to
    -max_cut_db..max_boost_db. (The keywords exist for bench/colour_variants.py; synthesis uses the defaults.)
    """
    recording = np.asarray(recording_logmel_mean, dtype=np.float64)
    render = np.asarray(render_logmel_mean, dtype=np.float64)
    if recording.shape != render.shape or recording.shape != band_centres_hz().shape:
        raise ValueError(f"expected two log-mel means of {band_centres_hz().size} bands")
    if not (np.isfinite(recording).all() and np.isfinite(render).all()):
        raise ValueError("log-mel means must be finite")
    centres = band_centres_hz()
    inside = np.flatnonzero((centres >= low_hz) & (centres <= top_hz))
    if smooth_bands < 1 or smooth_bands % 2 == 0 or inside.size == 0:
        raise ValueError("smooth_bands must be odd and positive, and low_hz..top_hz must hold a band")
    gains = recording - render
    gains[: inside[0]] = gains[inside[0]]
    gains[inside[-1] + 1 :] = gains[inside[-1]]
    half = smooth_bands // 2
    gains = np.convolve(np.pad(gains, half, mode="edge"), np.ones(smooth_bands) / smooth_bands, mode="valid")
    gains -= gains[inside].mean()
    to_log = np.log(10.0) / 20.0
    return np.clip(gains, -max_cut_db * to_log, max_boost_db * to_log)


def loudness_neutral(gains: np.ndarray, render_logmel_mean: np.ndarray) -> np.ndarray:
    """`gains` shifted so that the render's speech keeps its energy through the filter (no new clipping)."""
    # The mel bands are area-normalised (a density): weighted by their width they add up to power.
    power = np.exp(2.0 * np.asarray(render_logmel_mean, dtype=np.float64)) * np.gradient(band_centres_hz())
    shift = 0.5 * np.log(float((power * np.exp(2.0 * gains)).sum()) / float(power.sum()))
    return np.asarray(gains - shift, dtype=np.float64)


def design_filter(gains: np.ndarray) -> np.ndarray:
    """Linear-phase FIR taps (float32, TAPS long) whose response follows the per-band log gains."""
    from scipy.signal import firwin2

    gains = np.asarray(gains, dtype=np.float64)
    if gains.shape != band_centres_hz().shape or not np.isfinite(gains).all():
        raise ValueError(f"expected {band_centres_hz().size} finite band gains")
    freqs = np.concatenate([[0.0], band_centres_hz(), [RATE / 2]])
    amplitude = np.exp(np.concatenate([[gains[0]], gains, [gains[-1]]]))
    return np.asarray(firwin2(TAPS, freqs, amplitude, fs=RATE), dtype=np.float32)


def check_taps(taps: object) -> np.ndarray:
    """Stored taps, validated: a finite float32 vector of TAPS values."""
    array = np.asarray(taps, dtype=np.float32)
    if array.shape != (TAPS,) or not np.isfinite(array).all():
        raise ValueError(f"a voice colour is {TAPS} finite filter taps")
    return array


class ColourFilter:
    """The filter run over one clause's audio, piece by piece: pieces join as if filtered whole.

    Causal, so each piece comes out as soon as it goes in (streaming is kept); the price is a
    5 ms delay, whose last 5 ms (the clause's trailing silence) stay in the filter.
    """

    def __init__(self, taps: np.ndarray) -> None:
        self._taps = check_taps(taps).astype(np.float64)
        self._state = np.zeros(TAPS - 1, dtype=np.float64)

    def __call__(self, piece: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        if piece.size == 0:
            return np.asarray(piece, dtype=np.float32)
        out, self._state = lfilter(self._taps, 1.0, np.asarray(piece, dtype=np.float64), zi=self._state)
        return np.clip(out, -1.0, 1.0).astype(np.float32)


def apply(taps: np.ndarray | None, audio: np.ndarray) -> np.ndarray:
    """`audio` with the colour given (unchanged when there is none)."""
    return np.asarray(audio, dtype=np.float32) if taps is None else ColourFilter(taps)(audio)
