
import numpy as np
import soundfile as sf

from synth.engines.gptsovits.backend import TorchBackend
from synth.engines.gptsovits.frontend import phonemize, phones_to_ids
from synth.engines.gptsovits.vocoder import (
    ChunkedVocoder,
    ChunkPolicy,
    VocodeRequest,
    frame_noise,
    vocode_batch,
)
from synth.engines.gptsovits.voice import GptSovitsVoice, make_voice
from tests.conftest import SHARED_VOICES

VOICES = SHARED_VOICES


def _setup(backend: TorchBackend, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tokens = np.random.default_rng(0).integers(0, 1024, 70)
    phones = np.array(phones_to_ids(phonemize("你好，世界。今天天气很好。", "zh")))
    timbre = np.random.default_rng(1).standard_normal(backend.dims.gin_channels).astype(np.float32)
    return tokens, phones, timbre, frame_noise(seed, backend.dims.inter_channels, 0.5)


def _snr(ref: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10((ref**2).sum() / ((ref - other) ** 2).sum()))


def test_one_token_is_1280_samples_at_32khz(torch_backend: TorchBackend) -> None:
    tokens, phones, timbre, noise = _setup(torch_backend)
    assert torch_backend.dims.sample_rate == 32000 and torch_backend.dims.samples_per_token == 1280
    short, long = vocode_batch(
        torch_backend,
        [VocodeRequest(tokens[:10], phones, timbre, noise), VocodeRequest(tokens, phones, timbre, noise)],
    )
    assert len(short) == 10 * 1280 and len(long) == 70 * 1280
    (alone,) = vocode_batch(torch_backend, [VocodeRequest(tokens[:10], phones, timbre, noise)])
    assert np.abs(alone - short).max() < 1e-4  # padding in a batch does not leak into a shorter row


def test_chunked_rendering_matches_the_whole_utterance(torch_backend: TorchBackend) -> None:
    tokens, phones, timbre, noise = _setup(torch_backend)
    (whole,) = vocode_batch(torch_backend, [VocodeRequest(tokens, phones, timbre, noise)])
    vocoder = ChunkedVocoder(
        torch_backend, phones, timbre, noise, ChunkPolicy(first_chunk=8, chunk=24, context=24, overlap=2)
    )
    chunks = [c for c in (vocoder.push(int(t)) for t in tokens) if c is not None]
    chunks.append(vocoder.finish())
    assert len(chunks[0]) == 8 * 1280 and len(chunks) == 4
    streamed = np.concatenate(chunks)
    assert len(streamed) == len(whole)
    (other_noise,) = vocode_batch(torch_backend, [VocodeRequest(tokens, phones, timbre, frame_noise(9, 32, 0.5))])
    # Chunking changes the audio far less than a different noise draw does.
    assert _snr(whole, streamed) > 15 and _snr(whole, streamed) > _snr(whole, other_noise) + 6
    # No clicks: the sample-to-sample jump at each seam is within the largest jumps elsewhere.
    seams = np.cumsum([len(c) for c in chunks[:-1]])
    jumps = np.abs(np.diff(streamed))
    assert all(jumps[s - 1] <= np.percentile(jumps, 99.9) for s in seams)


def test_a_real_recording_makes_a_voice(torch_backend: TorchBackend) -> None:
    audio, sr = sf.read(VOICES / "zh_S0764_enroll.wav", dtype="float32")
    voice = make_voice(torch_backend, audio, sr, transcript="甚至出现交易几乎停滞的情况", lang="zh")
    assert isinstance(voice, GptSovitsVoice)
    # 16 kHz -> 50 Hz features -> 25 Hz tokens: 25 per second of (clipped) audio + 0.6 s of silence.
    expected = 25 * (min(len(audio) / sr, 10.0) + 0.6)
    assert abs(len(voice.prompt_tokens) - expected) <= 2
    assert voice.timbre.shape == (torch_backend.dims.gin_channels,) and np.isfinite(voice.timbre).all()
    free = make_voice(torch_backend, audio, sr)
    assert len(free.prompt_tokens) == 0 and np.allclose(free.timbre, voice.timbre)
    other, sr2 = sf.read(VOICES / "en_1688_probe.wav", dtype="float32")
    assert not np.allclose(make_voice(torch_backend, other, sr2).timbre, voice.timbre, atol=1e-3)
