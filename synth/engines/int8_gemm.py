"""The Kokoro decoder's int8 convolutions rewritten as GEMMs that use the CPU's VNNI instructions.

The packaged graph quantises each convolution's input on the fly (DynamicQuantizeLinear, uint8)
and convolves it with uint8 weights (ConvInteger). ONNX Runtime runs ConvInteger through its
uint8 x uint8 GEMM, which widens to 16 bits and runs no faster than float: these convolutions
are 63% of a clause's decode (ONNX Runtime's profile of one sentence), at about 210 int8 GOPS
on 2 Zen 4 cores. Its uint8 x int8 GEMM (MatMulIntegerToFloat) uses AVX512-VNNI / AVX-VNNI
dot products and reaches about 630 GOPS on the same cores for the decoder's shapes (measured;
README, "How it is built").

Every weight of the packaged decoder, less its zero point, fits in int8, so each convolution is
rewritten exactly, with no new rounding of its weights:

    x -> DynamicQuantizeLinear -> Transpose to [1, T, C] -> Pad with the input's zero point
      -> k shifted slices, concatenated to [1, T, k*C] (im2col) -> MatMulIntegerToFloat with
         the weights as int8 [k*C, C_out], the weight scale and the float bias
      -> Transpose back to [1, C_out, T]

The sums are the same integers as ConvInteger's; the one difference is that the bias is added
in float instead of being rounded to the product of the scales first.

Without VNNI (AVX2 alone) the uint8 x int8 GEMM multiplies pairs into saturating 16-bit sums
(VPMADDUBSW), which does clip (tests/synth/test_int8_gemm.py shows it). There the rewrite keeps every
weight within +-64 (`pair_safe`): 82 of the decoder's 23,490 output channels have wider weights, and
only theirs are rounded, each channel to its own scale. On a 2-core Zen 3 without VNNI a clause then
decodes 1.16x faster (median over 20 clauses; 1193 -> 1037 ms), its waveform correlates 0.997 with the packaged
graph's (lowest 0.994), and DNSMOS is 3.05 against 3.05 (`python bench/decoder_gemm.py`, `decoder_gemm_avx2.json`).
"""

from __future__ import annotations

import collections

import numpy as np

CONTRIB_DOMAIN = "com.microsoft"
INT64_MAX = 2**63 - 1
PAIR_SAFE_LIMIT = 64  # weights within +-64: two products of a uint8 input never overflow 16 bits


class RewriteError(ValueError):
    """A convolution is not laid out as the packaged Kokoro decoder's are."""


def convs_as_gemm(model_bytes: bytes, *, pair_safe: bool = False) -> tuple[bytes, int]:
    """The graph with every eligible ConvInteger rewritten (see the module docstring); and how many were.

    `pair_safe`: for CPUs without VNNI, keep every weight within +-64 (`pair_safe_weights`) so that two
    uint8 x int8 products summed in 16 bits cannot saturate."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)

    def constant(name: str) -> np.ndarray:
        if name not in initializers:
            raise RewriteError(f"{name!r} is not a constant")
        return numpy_helper.to_array(initializers[name])

    new_initializers: list = []
    transposed: dict[str, str] = {}  # a quantised input -> its [1, T, C] transpose, shared by its convolutions
    replaced: dict[int, list] = {}  # id(the chain's last node) -> the nodes that take its place
    for conv in graph.node:
        if conv.op_type != "ConvInteger":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        weights = constant(conv.input[1]).astype(np.int32)
        if attrs.get("group", 1) != 1 or list(attrs.get("strides", [1])) != [1] or weights.ndim != 3:
            continue  # strided and grouped convolutions are few and small: left as they are
        quantize = producer.get(conv.input[0])
        if quantize is None or quantize.op_type != "DynamicQuantizeLinear":
            raise RewriteError(f"{conv.name}: its input is not quantised on the fly")
        centred = weights - int(constant(conv.input[3]))
        if centred.min() < -128 or centred.max() > 127:
            raise RewriteError(f"{conv.name}: its weights do not fit in int8")
        bias, last = _bias_and_scale_chain(conv, consumers, producer, constant)
        scale_node = producer[last.input[1]]
        weight_scale = next((constant(name) for name in scale_node.input if name in initializers), None)
        if weight_scale is None:
            raise RewriteError(f"{conv.name}: its weight scale is not a constant")

        out_channels, in_channels, kernel = centred.shape
        dilation = int(attrs.get("dilations", [1])[0])
        pad_left, pad_right = (int(p) for p in attrs.get("pads", [0, 0]))
        stem = conv.name.replace("/", "_").strip("_") + "_gemm"
        nodes = []
        quantised, x_scale, x_zero = quantize.output
        if quantised not in transposed:
            transposed[quantised] = quantised + "_ntc"
            nodes.append(helper.make_node("Transpose", [quantised], [transposed[quantised]], perm=[0, 2, 1]))
        columns = transposed[quantised]
        if pad_left or pad_right:
            pads_name = stem + "_pads"
            new_initializers.append(
                numpy_helper.from_array(np.array([0, pad_left, 0, 0, pad_right, 0], np.int64), pads_name)
            )
            nodes.append(helper.make_node("Pad", [columns, pads_name, x_zero], [stem + "_padded"]))
            columns = stem + "_padded"
        if kernel > 1:
            span = dilation * (kernel - 1)
            taps = []
            for tap in range(kernel):
                start, end = tap * dilation, (tap * dilation - span) or INT64_MAX
                names = [f"{stem}_tap{tap}_{part}" for part in ("starts", "ends", "axes")]
                for name, value in zip(names, (start, end, 1), strict=True):
                    new_initializers.append(numpy_helper.from_array(np.array([value], np.int64), name))
                nodes.append(helper.make_node("Slice", [columns, *names], [f"{stem}_tap{tap}"]))
                taps.append(f"{stem}_tap{tap}")
            nodes.append(helper.make_node("Concat", taps, [stem + "_im2col"], axis=2))
            columns = stem + "_im2col"
        # Row (tap * C + channel) of the GEMM's weights is weights[:, channel, tap].
        matrix = centred.transpose(2, 1, 0).reshape(kernel * in_channels, out_channels)
        scales = np.full(out_channels, float(np.asarray(weight_scale).reshape(-1)[0]), np.float32)
        if pair_safe:
            matrix, scales = pair_safe_weights(matrix, scales)
        per_column = bool(np.any(scales != scales[0]))
        gemm_inputs = [columns, stem + "_w", x_scale, stem + "_wscale", x_zero, stem + "_wzero"]
        new_initializers += [
            numpy_helper.from_array(matrix.astype(np.int8), stem + "_w"),
            numpy_helper.from_array(scales if per_column else scales[:1], stem + "_wscale"),
            numpy_helper.from_array(np.zeros(out_channels if per_column else 1, np.int8), stem + "_wzero"),
        ]
        if bias is not None:
            new_initializers.append(numpy_helper.from_array(bias.astype(np.float32), stem + "_bias"))
            gemm_inputs.append(stem + "_bias")
        nodes.append(
            helper.make_node("MatMulIntegerToFloat", gemm_inputs, [stem + "_ntc_out"], domain=CONTRIB_DOMAIN)
        )
        nodes.append(helper.make_node("Transpose", [stem + "_ntc_out"], [last.output[0]], perm=[0, 2, 1]))
        replaced[id(last)] = nodes

    if not replaced:
        return model_bytes, 0
    nodes = [new for node in graph.node for new in replaced.get(id(node), [node])]
    nodes = _needed(nodes, {out.name for out in graph.output})
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [init for init in [*graph.initializer, *new_initializers] if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(opset.domain == CONTRIB_DOMAIN for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB_DOMAIN, 1))
    return model.SerializeToString(), len(replaced)


def pair_safe_weights(matrix: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer weights [K, N] and their per-column scales, re-quantised so that every weight is within +-64.

    AVX2's uint8 x int8 multiply (VPMADDUBSW) adds pairs of products into a saturating 16-bit sum: with
    inputs up to 255, two weights of up to 64 in size stay within it (255 * 64 * 2 = 32640). A column whose
    weights already fit keeps them exactly; a wider one is scaled down to fit and its scale up to match, so
    only its own weights lose precision (ONNX Runtime's quantiser calls the same idea `reduce_range`)."""
    widest = np.abs(matrix).max(axis=0).astype(np.float64)
    shrink = np.where(widest > PAIR_SAFE_LIMIT, PAIR_SAFE_LIMIT / np.maximum(widest, 1), 1.0)
    safe = np.clip(np.rint(matrix * shrink), -PAIR_SAFE_LIMIT, PAIR_SAFE_LIMIT).astype(np.int32)
    return safe, (scales / shrink).astype(np.float32)


def _bias_and_scale_chain(conv, consumers, producer, constant):  # type: ignore[no-untyped-def]
    """The float bias (or None) and the chain's last node, for ConvInteger -> [Add bias] -> Cast -> Mul scale.

    The quantiser computed the bias it adds as Floor(bias / scale) -> Cast -> Reshape; the float bias is the
    Div's first input."""
    following = _only_consumer(conv.output[0], consumers)
    bias = None
    if following is not None and following.op_type == "Add":
        reshape = producer[following.input[1]]
        divide = producer[producer[producer[reshape.input[0]].input[0]].input[0]]
        if divide.op_type != "Div":
            raise RewriteError(f"{conv.name}: its bias is not quantised as expected")
        bias = constant(divide.input[0])
        following = _only_consumer(following.output[0], consumers)
    if following is None or following.op_type != "Cast":
        raise RewriteError(f"{conv.name}: its output is not cast to float")
    last = _only_consumer(following.output[0], consumers)
    if last is None or last.op_type != "Mul" or producer.get(last.input[1]) is None:
        raise RewriteError(f"{conv.name}: its output is not scaled as expected")
    return bias, last


def _only_consumer(name: str, consumers):  # type: ignore[no-untyped-def]
    """The one node that reads `name`, or None when none or several do."""
    readers = consumers.get(name, [])
    return readers[0] if len(readers) == 1 else None


def _needed(nodes: list, outputs: set[str]) -> list:
    """The nodes that some graph output depends on, in their order (the replaced chains' leftovers go)."""
    producer = {out: node for node in nodes for out in node.output}
    needed: set[int] = set()
    pending = list(outputs)
    while pending:
        node = producer.get(pending.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            pending.extend(node.input)
    return [node for node in nodes if id(node) in needed]
