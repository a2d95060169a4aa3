"""End to end through the Engine interface, on the ONNX Runtime path, with real recordings."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.engines.base import ClauseRequest, Voice
from synth.engines.gptsovits.engine import (
    GptSovitsEngine,
    GptSovitsOptions,
    create_gptsovits_engine,
    voice_from_arrays,
    voice_to_arrays,
)
from synth.engines.gptsovits.sampling import SamplingParams
from synth.engines.gptsovits.vocoder import ChunkPolicy
from tests.conftest import SHARED_VOICES
from voxroom.errors import ErrorCode, VoxroomError

VOICES = SHARED_VOICES
OPTIONS = GptSovitsOptions(
    max_batch=4,
    sampling=SamplingParams(min_tokens=14, max_tokens=30),  # random weights may stop at once otherwise
    chunks=ChunkPolicy(first_chunk=6, chunk=8, context=8, overlap=2),
)


@pytest.fixture(scope="module")
def engine(tiny_dir: Path, onnx_dir: Path) -> GptSovitsEngine:
    return create_gptsovits_engine(tiny_dir, runtime="onnx", onnx_dir=onnx_dir, options=OPTIONS)


@pytest.fixture(scope="module")
def voices(engine: GptSovitsEngine) -> dict[str, Voice]:
    zh, sr = sf.read(VOICES / "zh_S0765_enroll.wav", dtype="float32")
    en, sr2 = sf.read(VOICES / "en_1688_probe.wav", dtype="float32")
    return {
        "zh": engine.voice_from_recording("acct-zh", zh, sr, transcript="这是一段参考录音", lang="zh"),
        "en": engine.voice_from_recording("acct-en", en, sr2),  # no transcript: reference-free
    }


def test_engine_runs_on_onnx_runtime_at_32khz(engine: GptSovitsEngine) -> None:
    assert engine.backend.name == "onnx:cpu" and engine.sample_rate == 32000 and engine.max_batch == 4
    engine.warm_up()


def test_a_batch_of_clauses_in_different_voices_and_languages(
    engine: GptSovitsEngine, voices: dict[str, Voice]
) -> None:
    clauses = [
        ClauseRequest("你好，世界。", "zh", voices["zh"]),
        ClauseRequest("Good morning, everyone.", "en", voices["en"]),
        ClauseRequest("こんにちは。", "ja", voices["zh"]),
    ]
    together = engine.synthesize_batch(clauses)
    for audio in together:
        assert audio.dtype == np.float32 and len(audio) % 1280 == 0
        assert 14 * 1280 <= len(audio) <= 30 * 1280 and np.abs(audio).max() <= 1.0 and audio.std() > 1e-3
    alone = [engine.synthesize_batch([c])[0] for c in clauses]
    for a, b in zip(together, alone, strict=True):
        assert len(a) == len(b) and np.abs(a - b).max() < 1e-3  # batching does not change a clause
    same_text_other_voice = engine.synthesize_batch([ClauseRequest("你好，世界。", "zh", voices["en"])])[0]
    n = min(len(same_text_other_voice), len(together[0]))
    assert np.abs(same_text_other_voice[:n] - together[0][:n]).mean() > 1e-3


def test_streaming_a_clause_matches_rendering_it_whole(engine: GptSovitsEngine, voices: dict[str, Voice]) -> None:
    clause = ClauseRequest("今天天气很好，我们出去走走吧。", "zh", voices["zh"])
    whole = engine.synthesize_batch([clause])[0]
    chunks = list(engine.stream_clause(clause))
    assert len(chunks) >= 3 and len(chunks[0]) == 6 * 1280
    streamed = np.concatenate(chunks)
    assert len(streamed) == len(whole)
    snr = 10 * np.log10((whole**2).sum() / ((whole - streamed) ** 2).sum())
    assert snr > 10


def test_continuous_synthesizer_streams_rows_that_join_late(engine: GptSovitsEngine, voices: dict[str, Voice]) -> None:
    clauses = [
        ClauseRequest("第一句话。", "zh", voices["zh"]),
        ClauseRequest("The second one.", "en", voices["en"]),
        ClauseRequest("第三句话来得晚一些。", "zh", voices["en"]),
    ]
    expected = [np.concatenate(list(engine.stream_clause(c))) for c in clauses]
    synth = engine.continuous()
    rows = [synth.submit(engine.utterance(c)) for c in clauses[:2]]
    pieces: dict[int, list[np.ndarray]] = {}
    finished: set[int] = set()
    steps = 0
    while synth.has_work():
        if steps == 4:
            rows.append(synth.submit(engine.utterance(clauses[2])))
        for event in synth.step():
            assert event.row not in finished
            pieces.setdefault(event.row, []).append(event.audio)
            if event.finished:
                finished.add(event.row)
        steps += 1
    assert finished == set(rows)
    for rid, want in zip(rows, expected, strict=True):
        got = np.clip(np.concatenate(pieces[rid]), -1.0, 1.0)
        assert len(got) == len(want) and np.abs(got - want).max() < 1e-3


def test_bad_requests_are_refused_with_protocol_errors(engine: GptSovitsEngine, voices: dict[str, Voice]) -> None:
    kokoro_voice = Voice(id="stock:jf_alpha", engine="kokoro", params=np.zeros((510, 256), np.float32))
    with pytest.raises(VoxroomError) as err:
        engine.synthesize_batch([ClauseRequest("hello", "en", kokoro_voice)])
    assert err.value.code is ErrorCode.BAD_REQUEST
    with pytest.raises(VoxroomError, match="not 'ko'"):
        engine.synthesize_batch([ClauseRequest("안녕하세요", "ko", voices["zh"])])
    with pytest.raises(VoxroomError, match="at least 3 s"):
        engine.voice_from_recording("acct-x", np.zeros(8000, np.float32), 16000)
    with pytest.raises(ValueError, match="at most 4"):
        engine.synthesize_batch([ClauseRequest("hi", "en", voices["en"])] * 5)


def test_voice_params_round_trip_and_stock_voices_come_from_the_models_dir(
    engine: GptSovitsEngine, voices: dict[str, Voice], tmp_path: Path
) -> None:
    restored = voice_from_arrays(voice_to_arrays(voices["zh"].params))
    assert np.array_equal(restored.prompt_tokens, voices["zh"].params.prompt_tokens)
    assert engine.stock_voices() == []
    with pytest.raises(KeyError):
        engine.stock_voice("nobody")
    shutil.copy(VOICES / "en_533_probe.wav", tmp_path / "ana.wav")
    stocked = GptSovitsEngine(engine.backend, OPTIONS, voices_dir=tmp_path)
    assert [v.name for v in stocked.stock_voices()] == ["ana"]
    voice = stocked.stock_voice("ana")
    assert voice.id == "stock:ana" and voice.is_stock
    assert len(stocked.synthesize_batch([ClauseRequest("Hello.", "en", voice)])[0]) > 0


def test_an_abandoned_stream_does_not_block_the_engine(engine: GptSovitsEngine, voices: dict[str, Voice]) -> None:
    stream = engine.stream_clause(ClauseRequest("这句话只听一半。", "zh", voices["zh"]))
    first = next(stream)  # the listener leaves after the first chunk, keeping the iterator
    assert len(first) > 0
    import threading

    done: list[np.ndarray] = []
    worker = threading.Thread(
        target=lambda: done.extend(engine.synthesize_batch([ClauseRequest("Still here.", "en", voices["en"])]))
    )
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive() and len(done[0]) > 0
    stream.close()
