"""Per-layer timbre: an added decoder input, zeros = the packaged graph, served and fitted graphs agree."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from synth.engines.base import ClauseRequest, Voice
from synth.engines.kokoro import KokoroEngine, trim_silence
from synth.engines.kokoro_layers import (
    LAYER_GROUPS,
    LAYER_STYLE_INPUT,
    LAYERS,
    LayerLayoutError,
    add_layer_style_input,
    check_layers,
    layer_names,
    zero_layers,
)
from synth.enroll.features import log_mel_24k

TEXT = "The weather is lovely today."


@pytest.fixture(scope="module")
def edited() -> onnx.ModelProto:
    from synth.engines.kokoro_model import model_file

    model = onnx.load(str(model_file()))
    add_layer_style_input(model)
    return model


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    # The packaged convolutions, so the split engine can be compared sample for sample with the whole graph.
    return KokoroEngine(threads=1, int8_gemm=False)


def session(model: onnx.ModelProto | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def feeds(engine: KokoroEngine) -> tuple[list[int], np.ndarray, dict[str, np.ndarray]]:
    tokens = engine.tokens_for(engine.g2p.phonemize(TEXT, "en"))
    pack = engine.stock_pack("jf_alpha")
    style = pack[len(tokens) - 1].reshape(1, 256).astype(np.float32)
    return tokens, pack, {
        "tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": np.array([1.0], np.float32),
    }


def mel_snr_db(x: np.ndarray, y: np.ndarray) -> float:
    a, b = log_mel_24k(x.reshape(-1)), log_mel_24k(y.reshape(-1))
    n = min(len(a), len(b))
    return float(10 * np.log10(np.sum(a[:n] ** 2) / np.sum((a[:n] - b[:n]) ** 2)))


def spectrum_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute difference of the long-term log-mel spectra: needs no sample alignment."""
    return float(np.abs(log_mel_24k(x).mean(axis=0) - log_mel_24k(y).mean(axis=0)).mean())


def layers(scale: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((LAYERS, 128)) * scale).astype(np.float32)


def test_zero_layers_give_the_packaged_graph_exactly(edited: onnx.ModelProto, engine: KokoroEngine) -> None:
    from synth.engines.kokoro_model import model_file

    _, _, inputs = feeds(engine)
    (packaged,) = session(str(model_file())).run(None, inputs)
    (ours,) = session(edited).run(None, {**inputs, LAYER_STYLE_INPUT: zero_layers()})
    np.testing.assert_array_equal(ours, packaged)


def test_layers_change_the_timbre_not_the_timing(edited: onnx.ModelProto, engine: KokoroEngine) -> None:
    _, _, inputs = feeds(engine)
    plain = session(edited).run(None, {**inputs, LAYER_STYLE_INPUT: zero_layers()})[0]
    moved = session(edited).run(None, {**inputs, LAYER_STYLE_INPUT: layers(0.3)})[0]
    assert moved.shape == plain.shape  # the decoder only: durations come from the front
    assert mel_snr_db(plain, moved) < 20.0


def test_the_served_split_engine_speaks_the_layers_as_the_whole_graph_does(
    edited: onnx.ModelProto, engine: KokoroEngine
) -> None:
    tokens, pack, inputs = feeds(engine)
    offsets = layers(0.4, seed=1)
    (whole,) = session(edited).run(None, {**inputs, LAYER_STYLE_INPUT: offsets})
    ours = engine.render_tokens(tokens, pack, offsets)
    np.testing.assert_allclose(ours, trim_silence(whole.reshape(-1), engine.sample_rate), atol=1e-5)
    # Through the voice: whole clauses exactly; streamed in two windows (each normalised on its own frames),
    # near the whole render and far from the same voice streamed without its layers.
    voice = Voice(id="u", engine="kokoro", params=pack, owner="u", layers=offsets)
    np.testing.assert_array_equal(engine.render_clause(ClauseRequest(TEXT, "en", voice)), ours)
    pieces = list(engine.stream_clause(ClauseRequest(TEXT, "en", voice)))
    bare = Voice(id="u", engine="kokoro", params=pack, owner="u")
    without = np.concatenate(list(engine.stream_clause(ClauseRequest(TEXT, "en", bare))))
    assert len(pieces) == 2
    assert spectrum_distance(ours, np.concatenate(pieces)) < 0.5 * spectrum_distance(ours, without)


def test_a_graph_without_the_expected_layers_is_refused(edited: onnx.ModelProto) -> None:
    again = onnx.ModelProto()
    again.CopyFrom(edited)
    with pytest.raises(LayerLayoutError, match="quantised once"):
        add_layer_style_input(again)


@pytest.mark.parametrize("bad", [np.zeros((58, 127)), np.full((58, 128), np.nan), np.zeros((57, 128))])
def test_check_layers_refuses_bad_shapes_and_values(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        check_layers(bad)
    assert check_layers(np.ones((58, 128))).dtype == np.float32


def test_layer_groups_name_the_decoder_parts_they_say() -> None:
    from synth.engines.kokoro_model import model_file

    names = layer_names(onnx.load(str(model_file())))
    expected = {
        "body": ("/decoder/decoder/decode.", "/decoder/decoder/encode/"),
        "noise": ("/decoder/decoder/generator/noise_res.",),
        "upsample1": tuple(f"/decoder/decoder/generator/resblocks.{i}/" for i in range(3)),
        "upsample2": tuple(f"/decoder/decoder/generator/resblocks.{i}/" for i in range(3, 6)),
    }
    assert sorted(row for rows in LAYER_GROUPS.values() for row in rows) == list(range(LAYERS))
    for group, rows in LAYER_GROUPS.items():
        assert all(names[row].startswith(expected[group]) for row in rows), group
