"""The Kokoro graph cut where its decoder begins: whole clauses as before, first words early, one clean seam."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from synth.admission import RenderCostModel
from synth.engines.base import ClauseRequest
from synth.engines.kokoro import SILENCE_THRESHOLD, KokoroEngine, trim_silence
from synth.engines.kokoro_graph import Features, Window, chunk_plan, crossfade, first_piece_frames
from synth.enroll import judge

LONG_ZH = "明天早上九点在公司门口见面吧"
LONG_EN = "Sorry, my connection dropped for a second."


def test_chunk_plan_decodes_short_clauses_whole_and_long_ones_in_two_overlapping_windows() -> None:
    assert chunk_plan(40, first_until=20, context=8) == [Window(0, 40, 0, 40)]
    head, rest = chunk_plan(169, first_until=30, context=8)
    assert head == Window(0, 38, 0, 30)
    assert rest == Window(22, 169, 30, 169)


def test_first_piece_lasts_while_the_rest_decodes() -> None:
    call_s, per_frame_s = 0.05, 0.0045
    for spoken in (30, 80, 160, 320):
        n = first_piece_frames(spoken, context=8, minimum=12, call_s=call_s, per_frame_s=per_frame_s)
        assert n >= 12
        assert n * 0.025 >= call_s + per_frame_s * (spoken - n + 8)
    slow = first_piece_frames(160, context=8, minimum=12, call_s=call_s, per_frame_s=2 * per_frame_s)
    assert slow > first_piece_frames(160, context=8, minimum=12, call_s=call_s, per_frame_s=per_frame_s)


def test_lead_frames_counts_the_leading_pad_columns() -> None:
    text = np.zeros((1, 4, 10), np.float32)
    text[0, :, 3:] = np.arange(7, dtype=np.float32) + 1.0
    features = Features(text, np.zeros((1, 20), np.float32), np.zeros((1, 20), np.float32))
    assert features.lead_frames() == 3


def test_crossfade_moves_from_the_first_signal_to_the_second() -> None:
    mixed = crossfade(np.ones(5, np.float32), np.zeros(5, np.float32))
    assert mixed[0] == 1.0 and mixed[-1] == 0.0 and np.all(np.diff(mixed) < 0)


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    engine = KokoroEngine(threads=2)
    engine.warm_up()
    return engine


def clause(engine: KokoroEngine, text: str, lang: str) -> ClauseRequest:
    return ClauseRequest(text, lang, engine.stock_voice("jf_alpha"))


def test_whole_clause_through_the_cut_graph_is_the_packaged_graph() -> None:
    from synth.engines.kokoro_model import model_file

    # The packaged convolutions, not their VNNI GEMM rewrite (tests/synth/test_int8_gemm.py compares those).
    engine = KokoroEngine(threads=2, int8_gemm=False)

    tokens = engine.tokens_for(engine.g2p.phonemize(LONG_EN, "en"))
    pack = engine.stock_pack("jf_alpha")
    session = ort.InferenceSession(str(model_file()), providers=["CPUExecutionProvider"])
    (packaged,) = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": pack[len(tokens) - 1].reshape(1, 256).astype(np.float32),
            "speed": np.array([1.0], np.float32),
        },
    )
    expected = trim_silence(packaged.reshape(-1), engine.sample_rate)
    ours = engine.render_tokens(tokens, pack)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize(("text", "lang"), [(LONG_ZH, "zh"), (LONG_EN, "en")])
def test_long_clause_streams_its_first_words_then_the_rest_in_the_same_voice(
    engine: KokoroEngine, text: str, lang: str
) -> None:
    # The first piece's length follows the decoder's cost fitted on this machine: start from the defaults, so a
    # busy test machine does not turn the plan into one window.
    engine._decode_cost = RenderCostModel(call_s=0.05, per_audio_s=0.2)
    whole = engine.render_clause(clause(engine, text, lang))
    pieces = list(engine.stream_clause(clause(engine, text, lang)))
    assert len(pieces) == 2
    first, rest = pieces
    assert 0.3 * engine.sample_rate <= first.size <= 0.5 * whole.size  # some words, well short of the clause
    joined = np.concatenate(pieces)
    assert abs(joined.size - whole.size) <= 0.05 * whole.size
    assert np.abs(first[:50]).max() < 5 * SILENCE_THRESHOLD  # starts at the onset (lead-in trimmed), no click
    # The same voice: the judge puts the streamed clause far nearer the whole render than two recordings of one
    # person are to each other (0.86 on tests/data/voices); measured 0.88-0.98 over 5 voices x 8 sentences.
    similarity = judge.cosine(
        judge.embed_speech_of(joined, engine.sample_rate), judge.embed_speech_of(whole, engine.sample_rate)
    )
    assert similarity > 0.85
    # The seam is not a click: the largest sample step within 5 ms of it is no larger than twice the largest
    # step of the whole render around the same place (20 ms either side).
    seam = first.size
    at_seam = np.abs(np.diff(joined[seam - 120 : seam + 120])).max()
    around = np.abs(np.diff(whole[seam - 480 : seam + 480])).max()
    assert at_seam <= 2 * around


def test_short_clause_is_one_piece_identical_to_the_whole_render(engine: KokoroEngine) -> None:
    pieces = list(engine.stream_clause(clause(engine, "好的", "zh")))
    assert len(pieces) == 1
    np.testing.assert_array_equal(pieces[0], engine.render_clause(clause(engine, "好的", "zh")))


def test_the_starting_phase_carries_the_sine_on_into_a_later_window(engine: KokoroEngine) -> None:
    """A window from frame 40 matches the whole decode far better with the phase the frames before it left."""
    tokens = engine.tokens_for(engine.g2p.phonemize(LONG_ZH, "zh"))
    pack = engine.stock_pack("jf_alpha")
    style = pack[len(tokens) - 1].reshape(1, 256).astype(np.float32)
    graphs = engine._graphs()
    features = graphs.features(tokens, style, 1.0)
    whole = graphs.decode(features, style, 0, features.frames, None)
    phase = graphs.phase(features)
    start, spf = 40, 600
    reference = whole[(start + 20) * spf : (start + 60) * spf]

    def error(decoded: np.ndarray) -> float:
        return float(np.sqrt(np.mean((decoded[20 * spf : 60 * spf] - reference) ** 2)))

    with_phase = error(graphs.decode(features, style, start, features.frames, phase))
    without = error(graphs.decode(features, style, start, features.frames, np.zeros_like(phase)))
    assert with_phase < 0.6 * without


def test_sleeping_intra_op_threads_render_the_same_audio(engine: KokoroEngine) -> None:
    # The default: idle ONNX Runtime threads sleep (spinning ones took the cores from the event loop and the
    # encoder on 2 cores: bench/engine_pool.py). The audio must not depend on it.
    for session in (engine._graphs()._front, engine._graphs()._decoder, engine._graphs()._phase):
        options = session.get_session_options()  # type: ignore[attr-defined]
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spinning = KokoroEngine(threads=2, spin=True)
    options = spinning._graphs()._front.get_session_options()  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="does not have configuration"):  # ONNX Runtime's default: spin
        options.get_session_config_entry("session.intra_op.allow_spinning")
    request = clause(engine, LONG_EN, "en")
    np.testing.assert_allclose(spinning.render_clause(request), engine.render_clause(request), atol=1e-5)


def test_a_clause_rendered_beside_another_runs_on_the_one_thread_copy_and_sounds_the_same() -> None:
    engine = KokoroEngine(threads=2, narrow_when_shared=True)
    engine.warm_up()
    wide, narrow = engine._graphs(), engine._narrow
    assert narrow is not None
    assert wide._decoder.get_session_options().intra_op_num_threads == 2  # type: ignore[attr-defined]
    assert narrow._decoder.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
    used: list[str] = []
    for name, graphs in (("wide", wide), ("narrow", narrow)):
        real = graphs.decode

        def recording(*args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            used.append(_name)
            return _real(*args, **kwargs)

        graphs.decode = recording  # type: ignore[method-assign]
    request = clause(engine, LONG_EN, "en")
    alone = engine.render_clause(request)
    assert used == ["wide"]
    used.clear()
    with engine._rendering():  # another clause is being rendered meanwhile
        beside = engine.render_clause(request)
        pieces = list(engine.stream_clause(request))
    assert used == ["narrow"] * 3  # the whole clause, then the streamed one's two windows
    assert len(pieces) == 2
    np.testing.assert_allclose(beside, alone, atol=1e-4)
    used.clear()
    engine.render_clause(request)  # alone again: all threads
    assert used == ["wide"]


def test_without_the_one_thread_copy_every_clause_uses_all_threads(engine: KokoroEngine) -> None:
    assert engine._narrow is None and not engine.narrow_when_shared
    with engine._rendering():
        assert engine._graphs_for_call() is engine._graphs()


def test_a_number_is_predicted_as_long_as_words_of_its_language(engine: KokoroEngine) -> None:
    """Admission predicts render time from spoken_seconds: a clause of digits must not look shorter than it
    sounds (English reads 281 as "two hundred and eighty-one", Chinese as 二百八十一)."""
    from synth.text.segment import spoken_seconds

    voice = engine.stock_voice(engine.stock_voices()[0].name)

    def audio_per_predicted_second(texts: tuple[str, ...], lang: str) -> float:
        ratios = []
        for text in texts:
            audio = engine.render_clause(ClauseRequest(text, lang, voice)).size / engine.sample_rate
            ratios.append(audio / spoken_seconds(text, lang))
        return sum(ratios) / len(ratios)

    for lang, words in (("en", ("See you in five minutes.", "Can you hear me clearly now?")),
                        ("zh", ("再讨论一下。", "我马上就到，"))):
        relative = audio_per_predicted_second(("281", "536", "947"), lang) / audio_per_predicted_second(words, lang)
        assert 0.75 < relative < 1.2, (lang, relative)  # measured: en 1.04-1.10 (1.34-1.41 at 0.35 s a digit)
