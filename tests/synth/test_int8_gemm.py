"""The decoder's int8 convolutions rewritten as VNNI GEMMs compute what ConvInteger computed."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from synth.cpu import cpu_has_avx2, cpu_has_vnni, cpuinfo_field
from synth.engines.int8_gemm import PAIR_SAFE_LIMIT, RewriteError, convs_as_gemm, pair_safe_weights
from synth.engines.kokoro import KokoroEngine, trim_silence
from synth.enroll import judge

IN_CHANNELS, OUT_CHANNELS, FRAMES = 16, 8, 50


def quantized_conv_graph(
    *,
    kernel: int,
    dilation: int = 1,
    stride: int = 1,
    bias: bool = True,
    zero_point: int = 128,
    seed: int = 0,
    centred_weights: np.ndarray | None = None,
) -> bytes:
    """One convolution as the packaged decoder has them: the input quantised on the fly, uint8 weights with a
    zero point, the bias quantised to the product of the scales, the int32 sum cast and scaled back to float.
    Weights are random unless `centred_weights` (less the zero point, [OUT, IN, kernel]) are given."""
    rng = np.random.default_rng(seed)
    if centred_weights is None:
        centred_weights = rng.integers(-128, 128, (OUT_CHANNELS, IN_CHANNELS, kernel))
    weights = (centred_weights + zero_point).clip(0, 255)
    pad = dilation * (kernel - 1) // 2
    initializers = [
        numpy_helper.from_array(weights.astype(np.uint8), "w"),
        numpy_helper.from_array(np.array(zero_point, np.uint8), "w_zero"),
        numpy_helper.from_array(np.array(0.004, np.float32), "w_scale"),
        numpy_helper.from_array(rng.normal(size=OUT_CHANNELS).astype(np.float32), "bias"),
        numpy_helper.from_array(np.array([1, OUT_CHANNELS, 1], np.int64), "bias_shape"),
    ]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "x_scale", "x_zero"]),
        helper.make_node(
            "ConvInteger", ["xq", "w", "x_zero", "w_zero"], ["sum"],
            kernel_shape=[kernel], dilations=[dilation], strides=[stride], pads=[pad, pad], group=1,
        ),
        helper.make_node("Mul", ["x_scale", "w_scale"], ["scale"]),
    ]
    if bias:
        nodes += [
            helper.make_node("Div", ["bias", "scale"], ["bias_div"]),
            helper.make_node("Floor", ["bias_div"], ["bias_floor"]),
            helper.make_node("Cast", ["bias_floor"], ["bias_int"], to=TensorProto.INT32),
            helper.make_node("Reshape", ["bias_int", "bias_shape"], ["bias_q"]),
            helper.make_node("Add", ["sum", "bias_q"], ["sum_biased"]),
        ]
    nodes += [
        helper.make_node("Cast", ["sum_biased" if bias else "sum"], ["sum_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["sum_float", "scale"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, IN_CHANNELS, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT_CHANNELS, None])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def run(model: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def op_types(model: bytes) -> list[str]:
    return [node.op_type for node in onnx.load_from_string(model).graph.node]


@pytest.mark.parametrize(
    ("kernel", "dilation", "bias"), [(1, 1, True), (3, 1, True), (7, 3, True), (11, 5, False), (3, 1, False)]
)
def test_a_convolution_becomes_one_gemm_with_the_same_sums(kernel: int, dilation: int, bias: bool) -> None:
    # Weights within +-64: no 16-bit pair sum saturates on any CPU (see the test after the next ones).
    centred = np.random.default_rng(0).integers(-64, 65, (OUT_CHANNELS, IN_CHANNELS, kernel))
    original = quantized_conv_graph(kernel=kernel, dilation=dilation, bias=bias, centred_weights=centred)
    rewritten, count = convs_as_gemm(original)
    assert count == 1
    assert "ConvInteger" not in op_types(rewritten)
    assert op_types(rewritten).count("MatMulIntegerToFloat") == 1
    x = np.random.default_rng(1).normal(size=(1, IN_CHANNELS, FRAMES)).astype(np.float32)
    expected, ours = run(original, x), run(rewritten, x)
    assert ours.shape == expected.shape == (1, OUT_CHANNELS, FRAMES)
    # The integer sums are the same; the bias is added in float instead of rounded to a step of the scale
    # first, so the two differ by less than one step (x_scale * w_scale) per output.
    step = float((x.max() - min(0.0, x.min())) / 255 * 0.004)
    assert np.abs(ours - expected).max() <= step * 1.001
    if not bias:
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_strided_convolutions_are_left_as_they_are() -> None:
    original = quantized_conv_graph(kernel=3, stride=2)
    rewritten, count = convs_as_gemm(original)
    assert count == 0 and rewritten == original


def test_weights_that_do_not_fit_in_int8_are_refused_not_rounded() -> None:
    model = onnx.load_from_string(quantized_conv_graph(kernel=3, zero_point=0))
    weights = next(init for init in model.graph.initializer if init.name == "w")
    weights.CopyFrom(numpy_helper.from_array(np.full((OUT_CHANNELS, IN_CHANNELS, 3), 200, np.uint8), "w"))
    with pytest.raises(RewriteError, match="do not fit in int8"):
        convs_as_gemm(model.SerializeToString())


def test_pair_safe_weights_keep_the_columns_that_fit_and_round_only_the_wider_ones() -> None:
    matrix = np.array([[64, 127, -3], [-64, -128, 5], [10, 40, -90]])
    scales = np.full(3, 0.004, np.float32)
    safe, safe_scales = pair_safe_weights(matrix, scales)
    assert np.abs(safe).max() <= PAIR_SAFE_LIMIT
    np.testing.assert_array_equal(safe[:, 0], matrix[:, 0])  # within +-64 already: exact, same scale
    assert safe_scales[0] == np.float32(0.004)
    # A wider column is rescaled as a whole: weight x scale stays within half a new step of the original.
    for column in (1, 2):
        step = safe_scales[column]
        assert step > 0.004
        assert np.abs(safe[:, column] * step - matrix[:, column] * 0.004).max() <= step / 2 + 1e-7


def test_pair_safe_sums_do_not_saturate_where_the_plain_ones_do_without_vnni() -> None:
    """The widest weights against inputs quantised to 255: two products overflow a 16-bit sum (2 x 255 x 127).
    AVX2's VPMADDUBSW saturates there, so without VNNI the plain rewrite is wrong and pair-safe weights, all
    within +-64, are right; with VNNI both are."""
    centred = np.full((OUT_CHANNELS, IN_CHANNELS, 3), 127)
    centred[OUT_CHANNELS // 2 :] = -128
    original = quantized_conv_graph(kernel=3, centred_weights=centred)
    x = np.ones((1, IN_CHANNELS, FRAMES), np.float32)
    x[:, :, ::7] = -0.01  # the zero point is 0-ish: most inputs quantise to 255
    expected = run(original, x)
    safe, count = convs_as_gemm(original, pair_safe=True)
    assert count == 1
    # 127 -> 64 and -128 -> -64 at twice the scale: one step of rounding per weight at most.
    bound = 3 * IN_CHANNELS * float(np.abs(x).max()) * 0.004 * 2 / 2
    assert np.abs(run(safe, x) - expected).max() <= bound
    plain, _ = convs_as_gemm(original)
    plain_error = np.abs(run(plain, x) - expected).max()
    if cpu_has_avx2() and not cpu_has_vnni():
        assert plain_error > 10 * bound  # saturated: why pair_safe exists
    elif cpu_has_vnni():
        assert plain_error <= bound


@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (7, 3)])
def test_a_pair_safe_rewrite_is_exact_where_weights_fit_and_close_elsewhere(kernel: int, dilation: int) -> None:
    rng = np.random.default_rng(2)
    centred = rng.integers(-128, 128, (OUT_CHANNELS, IN_CHANNELS, kernel))
    centred[: OUT_CHANNELS // 2] //= 2  # these output channels fit within +-64
    original = quantized_conv_graph(kernel=kernel, dilation=dilation, centred_weights=centred)
    rewritten, _ = convs_as_gemm(original, pair_safe=True)
    x = rng.normal(size=(1, IN_CHANNELS, FRAMES)).astype(np.float32)
    expected, ours = run(original, x), run(rewritten, x)
    step = float((x.max() - min(0.0, x.min())) / 255 * 0.004)
    fits = slice(0, OUT_CHANNELS // 2)
    assert np.abs(ours[:, fits] - expected[:, fits]).max() <= step * 1.001  # the bias rounding only
    assert np.corrcoef(ours.ravel(), expected.ravel())[0, 1] > 0.999
    assert np.abs(ours - expected).max() > step  # the wide channels were rounded: this test sees it


def test_vnni_is_read_from_the_cpu_flags() -> None:
    assert cpu_has_avx2("flags\t\t: fpu sse4_2 avx2 fma\n") and not cpu_has_avx2("flags\t\t: fpu sse4_2\n")
    assert cpu_has_vnni("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert cpu_has_vnni("flags\t\t: fpu avx2 avx_vnni\n")
    assert not cpu_has_vnni("flags\t\t: fpu sse4_2 avx2 fma\n")
    assert not cpu_has_vnni("")
    assert cpuinfo_field("model name", "processor\t: 0\nmodel name\t: AMD EPYC\n") == "AMD EPYC"


def test_every_unstrided_convolution_of_the_packaged_decoder_is_rewritten() -> None:
    from synth.engines.kokoro_graph import split_graph
    from synth.engines.kokoro_model import model_file

    _, decoder, _ = split_graph(model_file())
    rewritten, count = convs_as_gemm(decoder)
    left = [node for node in onnx.load_from_string(rewritten).graph.node if node.op_type == "ConvInteger"]
    assert count == op_types(decoder).count("ConvInteger") - len(left) >= 60
    for node in left:  # the F0, energy and first noise convolutions: strided, tiny
        strides = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "strides")
        assert strides != [1]


@pytest.mark.parametrize("pair_safe", [None, True], ids=["as-this-cpu-chooses", "pair-safe"])
def test_the_engine_speaks_the_same_through_the_rewritten_decoder(pair_safe: bool | None) -> None:
    if pair_safe and not cpu_has_vnni():
        pytest.skip("this CPU has no VNNI: the first case was pair-safe already")
    packaged = KokoroEngine(threads=2, int8_gemm=False)
    rewritten = KokoroEngine(threads=2, int8_gemm=True, pair_safe=pair_safe)
    pack = packaged.stock_pack("jf_alpha")
    for text, lang in (("Sorry, my connection dropped for a second.", "en"), ("明天早上九点在公司门口见面吧", "zh")):
        tokens = packaged.tokens_for(packaged.g2p.phonemize(text, lang))
        # The front is the same graph in both: decode its features through each decoder, untrimmed, so the
        # waveforms line up sample for sample.
        style, features = packaged._front(tokens, pack)
        expected = packaged._graphs().decode(features, style, 0, features.frames, None)
        ours = rewritten._graphs().decode(features, style, 0, features.frames, None)
        assert ours.shape == expected.shape
        # Rounding differs only in the biases, but each layer requantises its input, so small differences
        # grow through the 60-odd layers: the waveforms stay nearly the same (correlation 0.995-0.998 measured)
        # and the judge hears one voice.
        assert np.corrcoef(ours, expected)[0, 1] > 0.98
        similarity = judge.cosine(
            judge.embed_speech_of(trim_silence(ours, 24000), 24000),
            judge.embed_speech_of(trim_silence(expected, 24000), 24000),
        )
        assert similarity > 0.95


@pytest.mark.parametrize(
    ("vnni", "avx2", "rewritten", "pair_safe"),
    [(True, True, True, False), (False, True, True, True), (False, False, False, True)],
)
def test_the_engine_rewrites_by_default_where_the_cpu_has_vnni_exactly_or_avx2_pair_safe(
    monkeypatch: pytest.MonkeyPatch, vnni: bool, avx2: bool, rewritten: bool, pair_safe: bool
) -> None:
    import synth.engines.kokoro as kokoro

    monkeypatch.setattr(kokoro, "cpu_has_vnni", lambda: vnni)
    monkeypatch.setattr(kokoro, "cpu_has_avx2", lambda: avx2)
    engine = KokoroEngine(threads=2)
    assert (engine.int8_gemm, engine.pair_safe) == (rewritten, pair_safe)


def test_a_decoder_that_cannot_be_rewritten_runs_as_packaged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import synth.engines.kokoro as kokoro

    def refuse(_: bytes, **__: object) -> tuple[bytes, int]:
        raise RewriteError("/decoder/conv: its input is not quantised on the fly")

    monkeypatch.setattr(kokoro, "convs_as_gemm", refuse)
    engine = KokoroEngine(threads=2, int8_gemm=True)
    with caplog.at_level("WARNING", logger="synth.engines.kokoro"):
        tokens = engine.tokens_for(engine.g2p.phonemize("hello", "en"))
        audio = engine.render_tokens(tokens, engine.stock_pack("jf_alpha"))
    assert audio.size > 0.2 * engine.sample_rate
    assert "left as packaged" in caplog.text
