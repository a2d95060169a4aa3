"""Per-layer timbre for Kokoro's decoder: an added input that gives each AdaIN layer its own style offset.

Every one of the decoder's 58 adaptive instance norms (AdaIN: a linear map of the timbre half
of the style, style[:128], to a per-channel scale and shift) reads the same 128 numbers. A voice
fitted through that one vector stayed near a similar, different person (docs/voice-fit.md):
128 numbers cannot move every layer where the speaker needs it. This adds one
graph input, `layer_style` [58, 128]: layer l reads style[:128] + layer_style[l]. Zeros give the
packaged graph's output exactly; a voice fit fills it in (`synth.fit.style_fit`).

Each layer's offset is still read through that layer's own trained map, so a layer can only take
scales and shifts it could already take for some style: the freedom is per layer, not per channel.
The same edit runs in the fit's PyTorch executor and in the served ONNX Runtime graph, so what is
fitted is what is served.
"""

from __future__ import annotations

import numpy as np

LAYER_STYLE_INPUT = "layer_style"
LAYERS = 58
TIMBRE_DIMS = 128
# The timbre half of the style as the decoder reads it, and the marker of an AdaIN layer's map.
_TIMBRE = "/decoder/Slice_output_0"
_FC = "/fc/"
# Rows of layer_style by the part of the decoder they condition (rows follow the layers' sorted node names):
# the decoder body on the acoustic features (decode.0-3, encode), the generator's noise branches, and its
# residual blocks after the first and after the second upsampling (the last, nearest the waveform).
LAYER_GROUPS = {"body": range(0, 10), "noise": range(10, 22), "upsample1": range(22, 40), "upsample2": range(40, 58)}


class LayerLayoutError(RuntimeError):
    """The graph's AdaIN layers are not laid out as this module expects (another export of the model)."""


def zero_layers() -> np.ndarray:
    return np.zeros((LAYERS, TIMBRE_DIMS), np.float32)


def check_layers(layers: object) -> np.ndarray:
    """A [58, 128] finite float32 array, or ValueError."""
    array = np.asarray(layers, dtype=np.float32)
    if array.shape != (LAYERS, TIMBRE_DIMS) or not np.isfinite(array).all():
        raise ValueError(f"per-layer timbre must be finite and shaped ({LAYERS}, {TIMBRE_DIMS})")
    return array


def layer_names(model: object) -> list[str]:
    """The AdaIN layer read by each row of `layer_style`, by module path, in Kokoro's graph (an onnx ModelProto)."""
    nodes = list(model.graph.node)  # type: ignore[attr-defined]
    return [n.name[: n.name.index(_FC)] for n in _adain_maps(nodes, _timbre_quantiser(nodes).output[0])]


def _timbre_quantiser(nodes: list):  # type: ignore[no-untyped-def, type-arg]
    """The node that quantises the decoder's timbre once for every AdaIN layer."""
    quantise = [n for n in nodes if n.op_type == "DynamicQuantizeLinear" and list(n.input) == [_TIMBRE]]
    if len(quantise) != 1:
        raise LayerLayoutError("the decoder's timbre is not quantised once as expected")
    return quantise[0]


def _adain_maps(nodes: list, quantised: str) -> list:  # type: ignore[type-arg]
    """Each AdaIN layer's MatMulInteger reading the quantised timbre, in row order (sorted by node name)."""
    layers = sorted(
        (n for n in nodes if n.op_type == "MatMulInteger" and n.input[0] == quantised and _FC in n.name),
        key=lambda n: n.name,
    )
    if len(layers) != LAYERS:
        raise LayerLayoutError(f"expected {LAYERS} AdaIN layers reading the timbre, found {len(layers)}")
    return layers


def add_layer_style_input(model: object) -> None:
    """Give `model` (an onnx ModelProto holding Kokoro's decoder) the `layer_style` input, in place.

    The int8 graph quantises the timbre once (DynamicQuantizeLinear) and every layer's MatMulInteger
    and scale Mul read that; here each layer gets its own Add and quantisation of timbre + offset.
    Layers are numbered in the order of their MatMulInteger nodes' names (stable across loads).
    """
    from onnx import TensorProto, helper

    graph = model.graph  # type: ignore[attr-defined]
    nodes = list(graph.node)
    quantiser = _timbre_quantiser(nodes)
    quantised, scale, zero_point = quantiser.output
    layers = _adain_maps(nodes, quantised)
    scale_muls = {n.name: n for n in nodes if n.op_type == "Mul" and scale in n.input}
    added = [
        helper.make_node(
            "Split", [LAYER_STYLE_INPUT, "layer_style/splits"], [f"layer_style/{i}" for i in range(LAYERS)], axis=0
        )
    ]
    graph.initializer.append(helper.make_tensor("layer_style/splits", TensorProto.INT64, [LAYERS], [1] * LAYERS))
    for i, matmul in enumerate(layers):
        prefix = matmul.name[: matmul.name.index(_FC) + len(_FC)]
        mul = scale_muls.get(prefix + "Gemm_MatMul_quant_scales_mul")
        if mul is None:
            raise LayerLayoutError(f"no scale for AdaIN layer {prefix!r}")
        shifted = f"{prefix}timbre_shifted"
        outputs = [f"{shifted}_quantized", f"{shifted}_scale", f"{shifted}_zero_point"]
        added += [
            helper.make_node("Add", [_TIMBRE, f"layer_style/{i}"], [shifted]),
            helper.make_node("DynamicQuantizeLinear", [shifted], outputs),
        ]
        matmul.input[0], matmul.input[2] = outputs[0], outputs[2]
        mul.input[list(mul.input).index(scale)] = outputs[1]
    readers = [n for n in graph.node if {quantised, scale, zero_point} & set(n.input)]
    if readers:
        raise LayerLayoutError(f"{readers[0].name!r} still reads the shared quantised timbre")
    at = nodes.index(quantiser)
    graph.node.remove(quantiser)
    for offset, node in enumerate(added):
        graph.node.insert(at + offset, node)
    graph.input.append(
        helper.make_tensor_value_info(LAYER_STYLE_INPUT, TensorProto.FLOAT, [LAYERS, TIMBRE_DIMS])
    )
