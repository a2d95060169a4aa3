"""A reference recording -> what a GPT-SoVITS voice keeps: prompt tokens, prompt phones, timbre.

As in the official inference: the prompt tokens come from cnhubert on 16 kHz audio (3 to
10 s, with silence appended), the timbre vector from the 32 kHz linear
spectrogram. The prompt phones are the transcript of the recording; without one the voice
decodes "reference-free" (no prompt tokens, timbre only), which the v2 model supports.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import soxr

from synth.engines.gptsovits.backend import Backend, Dims
from synth.engines.gptsovits.frontend import end_with_punctuation, phonemize, phones_to_ids

MIN_PROMPT_S, MAX_PROMPT_S = 3.0, 10.0


class VoiceError(ValueError):
    """A reference recording that cannot make a voice (too short, silent, wrong shape)."""


@dataclasses.dataclass(frozen=True, eq=False)
class GptSovitsVoice:
    prompt_tokens: np.ndarray  # int64 [N]; empty for a reference-free voice
    prompt_phones: np.ndarray  # int64 [P] phone ids of the recording's transcript; empty when none
    timbre: np.ndarray  # float32 [gin]
    prompt_text: str = ""  # the transcript, kept for BERT features of the prompt
    prompt_lang: str = ""


def linear_spectrogram(audio: np.ndarray, dims: Dims) -> np.ndarray:
    """Magnitude STFT as the official `spectrogram_torch(center=False)`: [1, n_fft//2+1, frames]."""
    pad = (dims.n_fft - dims.hop) // 2
    x = np.pad(audio.astype(np.float64), (pad, pad), mode="reflect")
    n_frames = 1 + (len(x) - dims.n_fft) // dims.hop
    window = np.zeros(dims.n_fft)
    offset = (dims.n_fft - dims.win) // 2
    window[offset : offset + dims.win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(dims.win) / dims.win)  # periodic Hann
    idx = np.arange(dims.n_fft)[None, :] + dims.hop * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(x[idx] * window, axis=1)
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-8)
    return mag.T[None].astype(np.float32)


def make_voice(
    backend: Backend, audio: np.ndarray, sample_rate: int, transcript: str | None = None, lang: str = "zh"
) -> GptSovitsVoice:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or len(audio) < MIN_PROMPT_S * sample_rate:
        raise VoiceError(f"the reference recording must be mono and at least {MIN_PROMPT_S:.0f} s long")
    peak = float(np.abs(audio).max())
    if peak < 1e-4:
        raise VoiceError("the reference recording is silent")
    if peak > 1.0:
        audio = audio / min(2.0, peak)
    dims = backend.dims
    wav32 = soxr.resample(audio, sample_rate, dims.sample_rate).astype(np.float32)
    timbre = backend.timbre(linear_spectrogram(wav32, dims))[0, :, 0]

    if transcript is None:
        return GptSovitsVoice(np.zeros(0, np.int64), np.zeros(0, np.int64), timbre.astype(np.float32))
    wav16 = soxr.resample(audio[: int(MAX_PROMPT_S * sample_rate)], sample_rate, 16000).astype(np.float32)
    # The official pipeline appends 0.3 s of silence counted at the decoder's rate (0.6 s at 16 kHz).
    wav16 = np.concatenate([wav16, np.zeros(int(0.3 * dims.sample_rate), np.float32)])
    tokens = backend.content_codes(wav16[None])[0].astype(np.int64)
    transcript = end_with_punctuation(transcript, lang)
    phones = np.asarray(phones_to_ids(phonemize(transcript, lang)), np.int64)
    return GptSovitsVoice(tokens, phones, timbre.astype(np.float32), transcript, lang)
