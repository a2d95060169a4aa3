from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from synth.audio_io import decode_audio
from synth.watermark import Watermarker, WatermarkInputError, detect_file
from synth.watermark.opus_trial import OPUS_RATE, encode_ogg_opus
from synth.watermark.resample import resample
from tests.conftest import SHARED_VOICES

ENGINE_RATE = 24000
ROOM_BITRATE = 24000
ReadVoice = Callable[[str], tuple[np.ndarray, int]]
VOICES = sorted(SHARED_VOICES.glob("*.wav"))


def test_marked_engine_speech_is_detected_after_opus(watermarker: Watermarker, kokoro_speech: np.ndarray) -> None:
    assert not watermarker.detect(kokoro_speech, ENGINE_RATE).watermarked
    marked = watermarker.embed(kokoro_speech, ENGINE_RATE)
    heard = decode_audio(encode_ogg_opus(marked, ENGINE_RATE, ROOM_BITRATE), sample_rate=OPUS_RATE)
    detection = watermarker.detect(heard, OPUS_RATE)
    assert detection.watermarked, detection
    assert detection.seconds_analysed > 1.5


@pytest.mark.parametrize("name", ["en_1998_probe.wav", "zh_S0765_enroll.wav", "zh_THCHS30-D4_probe.wav"])
def test_marked_recordings_are_detected_after_opus(watermarker: Watermarker, read_voice: ReadVoice, name: str) -> None:
    pcm, rate = read_voice(name)
    marked = watermarker.embed(pcm, rate)
    detection = detect_file(encode_ogg_opus(marked, rate, ROOM_BITRATE), watermarker)
    assert detection.watermarked, detection
    assert detection.confidence == "high"


@pytest.mark.parametrize("path", VOICES, ids=lambda p: p.name)
def test_clean_recordings_are_not_detected(watermarker: Watermarker, read_voice: ReadVoice, path: Path) -> None:
    pcm, rate = read_voice(path.name)
    assert not watermarker.detect(pcm, rate).watermarked
    after_opus = detect_file(encode_ogg_opus(pcm, rate, ROOM_BITRATE), watermarker)
    assert not after_opus.watermarked, after_opus


def test_chunked_marking_joins_without_clicks(watermarker: Watermarker, read_voice: ReadVoice) -> None:
    pcm, rate = read_voice("en_1998_enroll.wav")
    rng = np.random.default_rng(7)
    edges = [0]
    while edges[-1] < pcm.size:  # clause-sized chunks, 0.3 s to 2 s
        edges.append(min(pcm.size, edges[-1] + int(rng.uniform(0.3, 2.0) * rate)))
    marked = np.concatenate([watermarker.embed(pcm[a:b], rate) for a, b in zip(edges, edges[1:], strict=False)])

    assert marked.shape == pcm.shape
    around = int(0.01 * rate)
    for join in edges[1:-1]:
        jump = abs(float(marked[join]) - float(marked[join - 1]))
        # The signal's own sample-to-sample range in the 20 ms around the join.
        own_range = float(np.abs(np.diff(pcm[join - around : join + around])).max())
        assert jump <= own_range, f"click at sample {join}: jump {jump:.4f} > {own_range:.4f}"
    assert watermarker.detect(marked, rate).watermarked


def test_short_chunks_each_carry_the_mark(watermarker: Watermarker, kokoro_speech: np.ndarray) -> None:
    chunk = int(0.3 * ENGINE_RATE)
    pieces = [kokoro_speech[i : i + chunk] for i in range(0, kokoro_speech.size, chunk)]
    marked = np.concatenate([watermarker.embed(piece, ENGINE_RATE) for piece in pieces])
    assert watermarker.detect(marked, ENGINE_RATE).watermarked


def test_embed_keeps_length_rate_and_loudness(watermarker: Watermarker, kokoro_speech: np.ndarray) -> None:
    marked = watermarker.embed(kokoro_speech, ENGINE_RATE)
    assert marked.dtype == np.float32 and marked.shape == kokoro_speech.shape
    assert np.abs(marked).max() <= 1.0
    change = marked - kokoro_speech
    assert 0 < np.sqrt(np.mean(change**2)) < 0.3 * np.sqrt(np.mean(kokoro_speech**2))


def test_short_clips_answer_with_low_confidence(watermarker: Watermarker, kokoro_speech: np.ndarray) -> None:
    for seconds in (0.5, 0.8, 1.5):
        clip = watermarker.embed(kokoro_speech[: int(seconds * ENGINE_RATE)], ENGINE_RATE)
        assert watermarker.detect(clip, ENGINE_RATE).confidence == "low", seconds
    assert watermarker.detect(np.zeros(ENGINE_RATE * 3, np.float32), ENGINE_RATE).confidence == "low"


def test_embed_cost_is_counted(kokoro_speech: np.ndarray) -> None:
    observed: list[tuple[float, float]] = []
    watermarker = Watermarker(on_embed=lambda cpu, audio: observed.append((cpu, audio)))
    watermarker.embed(kokoro_speech, ENGINE_RATE)
    watermarker.embed(kokoro_speech[: ENGINE_RATE // 2], ENGINE_RATE)
    stats = watermarker.stats()
    assert stats.chunks == 2
    assert stats.audio_seconds == pytest.approx(kokoro_speech.size / ENGINE_RATE + 0.5)
    assert stats.cpu_seconds > 0 and stats.last_chunk_seconds > 0
    assert stats.real_time_factor == pytest.approx(stats.cpu_seconds / stats.audio_seconds)
    assert [audio for _, audio in observed] == pytest.approx([kokoro_speech.size / ENGINE_RATE, 0.5])
    assert sum(cpu for cpu, _ in observed) == pytest.approx(stats.cpu_seconds)


@pytest.mark.parametrize(
    ("pcm", "rate"),
    [
        (np.zeros((2, 24000), np.float32), 24000),  # stereo
        (np.array([0.0, np.nan] * 12000, np.float32), 24000),
        (np.zeros(24000, np.int16), 24000),  # integer samples, not float
        (np.zeros(24000, np.float32), 0),
    ],
    ids=["stereo", "nan", "int16", "zero-rate"],
)
def test_bad_pcm_is_refused(watermarker: Watermarker, pcm: np.ndarray, rate: int) -> None:
    with pytest.raises(WatermarkInputError):
        watermarker.embed(pcm, rate)
    with pytest.raises(WatermarkInputError):
        watermarker.detect(pcm, rate)


def test_one_instance_can_be_shared_by_threads(watermarker: Watermarker, kokoro_speech: np.ndarray) -> None:
    chunks = [kokoro_speech[i : i + ENGINE_RATE // 2] for i in range(0, kokoro_speech.size, ENGINE_RATE // 2)]
    alone = [watermarker.embed(chunk, ENGINE_RATE) for chunk in chunks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        shared = list(pool.map(lambda chunk: watermarker.embed(chunk, ENGINE_RATE), chunks * 3))
    for i, marked in enumerate(shared):
        np.testing.assert_allclose(marked, alone[i % len(chunks)], atol=1e-6)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_other_sample_rates(watermarker: Watermarker, read_voice: ReadVoice, rate: int) -> None:
    pcm, source_rate = read_voice("en_3331_probe.wav")
    pcm = resample(pcm, source_rate, rate)
    marked = watermarker.embed(pcm, rate)
    assert marked.shape == pcm.shape
    assert watermarker.detect(marked, rate).watermarked
    assert not watermarker.detect(pcm, rate).watermarked
