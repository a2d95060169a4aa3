"""Run the Kokoro int8 ONNX graph in PyTorch, so the style vector gets a gradient.

The graph is executed node by node in float32 with autograd. Quantisation is undone
rather than simulated: DynamicQuantizeLinear passes its input through with scale 1 and
zero point 0, integer MatMul/Conv run in float on (weight - zero point), and the
graph's own scale multiplications then give the dequantised result. Bias
quantisation (divide, floor, cast to int32) becomes exact for the same reason.

Two ops are rewritten for a usable gradient: the phase atan(imag / real) is computed
with atan2 (same value, finite gradient near real == 0), and sqrt clamps its input
away from zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

Tensor = torch.Tensor
_SQRT_FLOOR = 1e-12

# The division imag / real whose arctangent is the vocoder's phase (see _atan).
_PHASE_DIV = "/decoder/decoder/generator/Div"
# ONNX element types the graph casts to.
_FLOAT, _INT32, _INT64, _BOOL = 1, 6, 7, 9


class UnsupportedGraph(RuntimeError):
    """The ONNX graph uses an op or an attribute this executor does not implement."""


class _Node:
    __slots__ = ("op", "inputs", "outputs", "attrs", "name", "_weight")

    def __init__(self, proto: onnx.NodeProto) -> None:
        self.op = proto.op_type
        self.inputs = list(proto.input)
        self.outputs = list(proto.output)
        self.name = proto.name
        self._weight: tuple[Tensor, Tensor] | None = None
        self.attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
        for key, value in self.attrs.items():
            if isinstance(value, bytes):
                self.attrs[key] = value.decode()
            elif isinstance(value, onnx.TensorProto):
                self.attrs[key] = numpy_helper.to_array(value)


def _as_tensor(array: np.ndarray) -> Tensor:
    # Quantised weights and zero points become float: they only ever feed integer
    # matmuls/convs, which run in float here.
    if array.dtype in (np.int8, np.uint8, np.float16, np.float64):
        return torch.from_numpy(array.astype(np.float32))
    if array.dtype == np.int32:
        return torch.from_numpy(array.astype(np.int64))
    return torch.from_numpy(array.copy())


def _ints(t: Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


class OnnxTorchGraph:
    """A differentiable executor for one ONNX graph (the ops Kokoro v1.0 int8 uses)."""

    def __init__(self, model_path: str | Path | onnx.ModelProto, *, emulate_int8: bool = False) -> None:
        # emulate_int8 quantises activations as ONNX Runtime does (no useful gradient):
        # used to check this executor against the runtime op for op.
        self._ops = dict(_OPS, DynamicQuantizeLinear=_dynamic_quantize_uint8) if emulate_int8 else _OPS
        model = model_path if isinstance(model_path, onnx.ModelProto) else onnx.load(str(model_path))
        graph = model.graph
        self.input_names = [i.name for i in graph.input]
        self.output_names = [o.name for o in graph.output]
        self.constants: dict[str, Tensor] = {
            init.name: _as_tensor(numpy_helper.to_array(init)) for init in graph.initializer
        }
        self.nodes = [_Node(n) for n in graph.node]
        for node in self.nodes:
            if node.op not in _OPS:
                raise UnsupportedGraph(f"op {node.op} not implemented")
        self._fold_constants()
        self._centre_integer_weights()
        self._producer = {out: i for i, n in enumerate(self.nodes) for out in n.outputs}

    def _centre_integer_weights(self) -> None:
        """Store (weight - zero point) once for every integer matmul/conv and drop the raw copy."""
        users: dict[str, int] = {}
        for node in self.nodes:
            for name in node.inputs:
                users[name] = users.get(name, 0) + 1
        for node in self.nodes:
            if node.op not in ("MatMulInteger", "ConvInteger") or len(node.inputs) < 4:
                continue
            weight, zero = node.inputs[1], node.inputs[3]
            if weight not in self.constants or (zero and zero not in self.constants):
                continue
            shape = (-1, 1, 1) if node.op == "ConvInteger" else (-1,)
            centred_name = f"{weight}::centred::{zero}"
            if centred_name not in self.constants:
                w, z = self.constants[weight], self.constants.get(zero) if zero else None
                self.constants[centred_name] = w if z is None else w - (z.reshape(shape) if z.numel() > 1 else z)
            node.inputs[1], node.inputs[3] = centred_name, ""
            users[weight] -= 1
            if users[weight] == 0:
                del self.constants[weight]

    def _fold_constants(self) -> None:
        """Evaluate once every node whose inputs are all constants."""
        remaining = []
        with torch.no_grad():
            for node in self.nodes:
                if all(not name or name in self.constants for name in node.inputs) and node.op not in _NEVER_FOLD:
                    values = _OPS[node.op](node, [self.constants.get(n) if n else None for n in node.inputs])
                    for name, value in zip(node.outputs, values, strict=False):
                        if name and value is not None:
                            self.constants[name] = value
                else:
                    remaining.append(node)
        self.nodes = remaining

    def _plan(self, wanted: Iterable[str], given: Iterable[str]) -> list[_Node]:
        """The nodes needed to compute `wanted` from `given`, in graph order."""
        needed: set[int] = set()
        known = set(given)
        stack = [w for w in wanted]
        while stack:
            name = stack.pop()
            if name in known:
                continue
            idx = self._producer.get(name)
            if idx is None or idx in needed:
                continue
            needed.add(idx)
            stack.extend(n for n in self.nodes[idx].inputs if n)
        return [self.nodes[i] for i in sorted(needed)]

    def run(self, feeds: Mapping[str, Tensor], outputs: Iterable[str] | None = None) -> dict[str, Tensor]:
        wanted = list(outputs) if outputs is not None else self.output_names
        plan = self._plan(wanted, feeds)
        # Drop each intermediate after its last reader, so only what autograd saved stays alive.
        last_read = {name: i for i, node in enumerate(plan) for name in node.inputs if name}
        keep = set(wanted)
        values: dict[str, Tensor] = dict(self.constants)
        values.update(feeds)
        for i, node in enumerate(plan):
            args = [values[n] if n else None for n in node.inputs]
            results = self._ops[node.op](node, args)
            for name, value in zip(node.outputs, results, strict=False):
                if name and value is not None:
                    values[name] = value
            for name in node.inputs:
                if name and last_read.get(name) == i and name not in keep and name not in self.constants:
                    values.pop(name, None)
        return {name: values[name] for name in wanted}


# ----------------------------------------------------------------------------- ops

OpFn = Callable[[_Node, list], list]
_OPS: dict[str, OpFn] = {}
_NEVER_FOLD = {"DynamicQuantizeLinear"}


def _op(*names: str) -> Callable[[OpFn], OpFn]:
    def register(fn: OpFn) -> OpFn:
        for name in names:
            _OPS[name] = fn
        return fn

    return register


def _unary(name: str, fn: Callable[[Tensor], Tensor]) -> None:
    _OPS[name] = lambda node, a: [fn(a[0])]


_unary("Sin", torch.sin)
_unary("Cos", torch.cos)
_unary("Exp", torch.exp)
_unary("Tanh", torch.tanh)
_unary("Sigmoid", torch.sigmoid)
_unary("Relu", torch.relu)
_unary("Log", torch.log)
_unary("Round", torch.round)
_unary("Sqrt", lambda x: torch.sqrt(x.clamp_min(_SQRT_FLOOR)) if x.is_floating_point() else torch.sqrt(x))
_unary(
    "NonZero",
    lambda x: (
        torch.stack(torch.nonzero(x, as_tuple=True)) if x.dim() else torch.zeros(1, int(bool(x)), dtype=torch.int64)
    ),
)


@_op("Floor")
def _floor(node: _Node, a: list) -> list:
    # The bias-quantisation floor is dropped: with activation scale 1 the bias then stays exact.
    if node.outputs[0].endswith("_quant_rounded:0"):
        return [a[0]]
    return [torch.floor(a[0])]


@_op("Atan")
def _atan(node: _Node, a: list) -> list:
    ratio = a[0]
    parts = getattr(ratio, "_atan_parts", None)
    if parts is None:
        return [torch.atan(ratio)]
    num, den = parts
    den = torch.where(den == 0, torch.full_like(den, 1e-9), den)
    angle = torch.atan2(num, den)
    # atan2 covers (-pi, pi]; atan(num/den) is the same angle folded into (-pi/2, pi/2].
    angle = torch.where(angle > torch.pi / 2, angle - torch.pi, angle)
    angle = torch.where(angle <= -torch.pi / 2, angle + torch.pi, angle)
    return [angle]


def _binary(name: str, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    _OPS[name] = lambda node, a: [fn(a[0], a[1])]


_binary("Add", torch.add)
_binary("Sub", torch.sub)
_binary("Mul", torch.mul)
_binary("Equal", torch.eq)
_binary("Less", torch.lt)
_binary("Greater", torch.gt)
_binary("GreaterOrEqual", torch.ge)
_binary("And", torch.logical_and)
_binary("MatMul", torch.matmul)


@_op("Div")
def _div(node: _Node, a: list) -> list:
    x, y = a
    if not x.is_floating_point() and not y.is_floating_point():
        return [torch.div(x, y, rounding_mode="trunc")]
    out = x / y
    if node.name == _PHASE_DIV:
        out._atan_parts = (x, y)  # type: ignore[attr-defined]  # read by Atan, see _atan
    return [out]


@_op("Pow")
def _pow(node: _Node, a: list) -> list:
    x, p = a
    if p.numel() == 1 and float(p) == 2.0:
        return [x * x]
    if p.numel() == 1 and float(p) == 0.5:
        return [torch.sqrt(x.clamp_min(_SQRT_FLOOR))]
    return [torch.pow(x, p)]


@_op("LeakyRelu")
def _leaky_relu(node: _Node, a: list) -> list:
    return [F.leaky_relu(a[0], node.attrs.get("alpha", 0.01))]


@_op("Cast")
def _cast(node: _Node, a: list) -> list:
    x, to = a[0], node.attrs["to"]
    if to == _FLOAT:
        return [x.float() if not x.is_floating_point() else x]
    if to == _INT32 and x.is_floating_point():
        return [x]  # a quantised accumulator: stays float
    if to in (_INT32, _INT64):
        return [x.long()]
    if to == _BOOL:
        return [x.bool()]
    raise UnsupportedGraph(f"Cast to {to}")


@_op("Shape")
def _shape(node: _Node, a: list) -> list:
    dims = list(a[0].shape)
    start, end = node.attrs.get("start", 0), node.attrs.get("end", len(dims))
    return [torch.tensor(dims[start:end], dtype=torch.int64)]


@_op("Gather")
def _gather(node: _Node, a: list) -> list:
    data, idx = a
    axis = node.attrs.get("axis", 0) % data.dim()
    idx = idx.long()
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    out = torch.index_select(data, axis, idx.reshape(-1))
    return [out.reshape((*data.shape[:axis], *idx.shape, *data.shape[axis + 1 :]))]


@_op("Unsqueeze")
def _unsqueeze(node: _Node, a: list) -> list:
    x = a[0]
    given = _ints(a[1]) if len(a) > 1 and a[1] is not None else list(node.attrs["axes"])  # opset < 13: attribute
    axes = sorted(v % (x.dim() + len(given)) for v in given)
    for ax in axes:
        x = x.unsqueeze(ax)
    return [x]


@_op("Squeeze")
def _squeeze(node: _Node, a: list) -> list:
    x = a[0]
    if len(a) < 2 or a[1] is None:
        return [x.squeeze()]
    for ax in sorted((v % x.dim() for v in _ints(a[1])), reverse=True):
        x = x.squeeze(ax)
    return [x]


@_op("Concat")
def _concat(node: _Node, a: list) -> list:
    parts = [t for t in a if t is not None]
    if any(t.is_floating_point() for t in parts):
        parts = [t.float() for t in parts]
    return [torch.cat(parts, dim=node.attrs["axis"])]


@_op("Reshape")
def _reshape(node: _Node, a: list) -> list:
    x, shape = a[0], _ints(a[1])
    if not node.attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


@_op("Transpose")
def _transpose(node: _Node, a: list) -> list:
    perm = node.attrs.get("perm") or list(reversed(range(a[0].dim())))
    return [a[0].permute(*perm)]


@_op("Split")
def _split(node: _Node, a: list) -> list:
    x, axis = a[0], node.attrs.get("axis", 0)
    if len(a) > 1 and a[1] is not None:
        sizes = _ints(a[1])
    else:
        n = node.attrs.get("num_outputs", len(node.outputs))
        sizes = [x.shape[axis] // n] * n
    return list(torch.split(x, sizes, dim=axis))


@_op("Slice")
def _slice(node: _Node, a: list) -> list:
    x = a[0]
    starts, ends = _ints(a[1]), _ints(a[2])
    axes = _ints(a[3]) if len(a) > 3 and a[3] is not None else list(range(len(starts)))
    steps = _ints(a[4]) if len(a) > 4 and a[4] is not None else [1] * len(starts)
    index: list = [slice(None)] * x.dim()
    flips = []
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        ax %= x.dim()
        n = x.shape[ax]
        if st > 0:
            s = max(0, min(n, s + n if s < 0 else s))
            e = max(0, min(n, e + n if e < 0 else e))
            index[ax] = slice(s, e, st)
        else:
            if st != -1:
                raise UnsupportedGraph("Slice with step < -1")
            s = max(-1, min(n - 1, s + n if s < 0 else s))
            e = max(-1, min(n - 1, e + n if e < 0 else e))
            index[ax] = slice(e + 1, s + 1)
            flips.append(ax)
    out = x[tuple(index)]
    return [out.flip(flips) if flips else out]


@_op("Expand")
def _expand(node: _Node, a: list) -> list:
    x, shape = a[0], _ints(a[1])
    target = torch.broadcast_shapes(tuple(x.shape), tuple(shape))
    return [x.expand(target)]


@_op("ConstantOfShape")
def _constant_of_shape(node: _Node, a: list) -> list:
    value = node.attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else value
    return [torch.full(_ints(a[0]), fill.reshape(-1)[0].item(), dtype=_as_tensor(fill).dtype)]


@_op("Where")
def _where(node: _Node, a: list) -> list:
    cond, x, y = a
    if x.is_floating_point() != y.is_floating_point():
        x, y = x.float(), y.float()
    return [torch.where(cond.bool(), x, y)]


@_op("Range")
def _range(node: _Node, a: list) -> list:
    start, limit, delta = (t.item() for t in a)
    dtype = a[0].dtype
    return [torch.arange(start, limit, delta, dtype=dtype)]


@_op("CumSum")
def _cumsum(node: _Node, a: list) -> list:
    x, axis = a[0], int(a[1].item())
    if node.attrs.get("reverse") or node.attrs.get("exclusive"):
        raise UnsupportedGraph("CumSum reverse/exclusive")
    return [torch.cumsum(x, dim=axis)]


@_op("Clip")
def _clip(node: _Node, a: list) -> list:
    x = a[0]
    lo = a[1] if len(a) > 1 else None
    hi = a[2] if len(a) > 2 else None
    if lo is not None:
        x = torch.maximum(x, lo.to(x.dtype))
    if hi is not None:
        x = torch.minimum(x, hi.to(x.dtype))
    return [x]


def _axes_arg(a: list, x: Tensor) -> list[int] | None:
    if len(a) > 1 and a[1] is not None and a[1].numel():
        return [v % x.dim() for v in _ints(a[1])]
    return None


@_op("ReduceMean")
def _reduce_mean(node: _Node, a: list) -> list:
    x = a[0]
    axes = _axes_arg(a, x) or node.attrs.get("axes") or list(range(x.dim()))
    return [x.mean(dim=axes, keepdim=bool(node.attrs.get("keepdims", 1)))]


@_op("ReduceSum")
def _reduce_sum(node: _Node, a: list) -> list:
    x = a[0]
    axes = _axes_arg(a, x) or node.attrs.get("axes") or list(range(x.dim()))
    return [x.sum(dim=axes, keepdim=bool(node.attrs.get("keepdims", 1)))]


@_op("Softmax")
def _softmax(node: _Node, a: list) -> list:
    return [torch.softmax(a[0], dim=node.attrs.get("axis", -1))]


@_op("LayerNormalization")
def _layer_norm(node: _Node, a: list) -> list:
    x, gamma = a[0], a[1]
    beta = a[2] if len(a) > 2 else None
    if node.attrs.get("axis", -1) not in (-1, x.dim() - 1):
        raise UnsupportedGraph("LayerNormalization over several axes")
    return [F.layer_norm(x, (x.shape[-1],), gamma, beta, node.attrs.get("epsilon", 1e-5))]


@_op("SkipLayerNormalization")
def _skip_layer_norm(node: _Node, a: list) -> list:
    x, skip, gamma = a[0], a[1], a[2]
    beta = a[3] if len(a) > 3 else None
    bias = a[4] if len(a) > 4 else None
    total = x + skip if bias is None else x + skip + bias
    out = F.layer_norm(total, (total.shape[-1],), gamma, beta, node.attrs.get("epsilon", 1e-12))
    return [out, None, None, total]


@_op("FastGelu")
def _fast_gelu(node: _Node, a: list) -> list:
    x = a[0] if len(a) < 2 or a[1] is None else a[0] + a[1]
    return [F.gelu(x, approximate="tanh")]


@_op("FusedMatMul")
def _fused_matmul(node: _Node, a: list) -> list:
    x, y = a
    if node.attrs.get("transA"):
        x = x.transpose(-1, -2)
    if node.attrs.get("transB"):
        y = y.transpose(-1, -2)
    if node.attrs.get("transBatchA") or node.attrs.get("transBatchB"):
        raise UnsupportedGraph("FusedMatMul with batch transposes")
    return [torch.matmul(x, y) * node.attrs.get("alpha", 1.0)]


@_op("DequantizeLinear")
def _dequantize(node: _Node, a: list) -> list:
    x, scale = a[0], a[1]
    zero = a[2] if len(a) > 2 and a[2] is not None else 0.0
    return [(x - zero) * scale]


@_op("DynamicQuantizeLinear")
def _dynamic_quantize(node: _Node, a: list) -> list:
    return [a[0], torch.tensor(1.0), torch.tensor(0.0)]


def _dynamic_quantize_uint8(node: _Node, a: list) -> list:
    x = a[0]
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = float(np.clip(np.round(-lo / scale), 0, 255))
    q = torch.clamp(torch.round(x / scale) + zero, 0, 255)
    return [q, torch.tensor(scale), torch.tensor(zero)]


@_op("MatMulInteger")
def _matmul_integer(node: _Node, a: list) -> list:
    x = a[0]
    if len(a) > 2 and a[2] is not None:
        x = x - a[2]
    w = _centred_weight(node, a[1], a[3] if len(a) > 3 else None, (-1,))
    return [torch.matmul(x, w)]


def _conv_padding(node: _Node, x: Tensor) -> tuple[Tensor, int]:
    pads = node.attrs.get("pads", [0, 0])
    if node.attrs.get("auto_pad", "NOTSET") == "VALID" and pads == [0, 0]:
        return x, 0
    if node.attrs.get("auto_pad", "NOTSET") != "NOTSET" or len(pads) != 2:
        raise UnsupportedGraph("only explicit 1-D conv padding")
    if pads[0] == pads[1]:
        return x, pads[0]
    return F.pad(x, (pads[0], pads[1])), 0


def _conv1d(node: _Node, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    x, pad = _conv_padding(node, x)
    return F.conv1d(
        x,
        w,
        b,
        stride=node.attrs.get("strides", [1])[0],
        padding=pad,
        dilation=node.attrs.get("dilations", [1])[0],
        groups=node.attrs.get("group", 1),
    )


@_op("Conv")
def _conv(node: _Node, a: list) -> list:
    if a[1].dim() == 4:
        return [_conv2d(node, a[0], a[1], a[2] if len(a) > 2 else None)]
    return [_conv1d(node, a[0], a[1], a[2] if len(a) > 2 else None)]


def _symmetric_2d_pads(node: _Node) -> tuple[int, int]:
    """(height, width) padding of a 2-D conv or pool; only symmetric explicit pads, or none."""
    pads = node.attrs.get("pads", [0, 0, 0, 0])
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID") or (auto_pad == "VALID" and any(pads)):
        raise UnsupportedGraph(f"2-D padding {auto_pad} {pads}")
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise UnsupportedGraph(f"asymmetric 2-D padding {pads}")
    return pads[0], pads[1]


def _conv2d(node: _Node, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    # Used by the DNSMOS quality model (a small spectrogram CNN), not by Kokoro.
    return F.conv2d(
        x, w, b, stride=tuple(node.attrs.get("strides", [1, 1])), padding=_symmetric_2d_pads(node),
        dilation=tuple(node.attrs.get("dilations", [1, 1])), groups=node.attrs.get("group", 1),
    )


@_op("MaxPool")
def _max_pool(node: _Node, a: list) -> list:
    if node.attrs.get("ceil_mode", 0) or len(node.attrs["kernel_shape"]) != 2:
        raise UnsupportedGraph("only 2-D max pooling without ceil mode")
    kernel = tuple(node.attrs["kernel_shape"])
    return [F.max_pool2d(a[0], kernel, tuple(node.attrs.get("strides", kernel)), _symmetric_2d_pads(node))]


@_op("Max")
def _max(node: _Node, a: list) -> list:
    out = a[0]
    for other in a[1:]:
        out = torch.maximum(out, other)
    return [out]


@_op("ReduceMax")
def _reduce_max(node: _Node, a: list) -> list:
    x = a[0]
    axes = _axes_arg(a, x) or node.attrs.get("axes") or list(range(x.dim()))
    return [x.amax(dim=[v % x.dim() for v in axes], keepdim=bool(node.attrs.get("keepdims", 1)))]


def _centred_weight(node: _Node, w: Tensor, zero: Tensor | None, per_row_shape: tuple[int, ...]) -> Tensor:
    """(weight - zero point), computed once per node: the weights are graph constants."""
    cached = getattr(node, "_weight", None)
    if cached is not None and cached[0] is w:
        return cached[1]
    centred = w if zero is None else w - (zero.reshape(per_row_shape) if zero.numel() > 1 else zero)
    if not w.requires_grad:
        node._weight = (w, centred)  # type: ignore[attr-defined]
    return centred


@_op("ConvInteger")
def _conv_integer(node: _Node, a: list) -> list:
    x = a[0]
    if len(a) > 2 and a[2] is not None:
        x = x - a[2]
    w = _centred_weight(node, a[1], a[3] if len(a) > 3 else None, (-1, 1, 1))
    return [_conv1d(node, x, w, None)]


@_op("ConvTranspose")
def _conv_transpose(node: _Node, a: list) -> list:
    pads = node.attrs.get("pads", [0, 0])
    if pads[0] != pads[1]:
        raise UnsupportedGraph("asymmetric ConvTranspose padding")
    return [
        F.conv_transpose1d(
            a[0],
            a[1],
            a[2] if len(a) > 2 else None,
            stride=node.attrs.get("strides", [1])[0],
            padding=pads[0],
            output_padding=node.attrs.get("output_padding", [0])[0],
            groups=node.attrs.get("group", 1),
            dilation=node.attrs.get("dilations", [1])[0],
        )
    ]


@_op("Pad")
def _pad(node: _Node, a: list) -> list:
    x, pads = a[0], _ints(a[1])
    mode = node.attrs.get("mode", "constant")
    rank = x.dim()
    begins, ends = pads[:rank], pads[rank:]
    torch_pads: list[int] = []
    for ax in reversed(range(rank)):
        torch_pads += [begins[ax], ends[ax]]
    while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:
        torch_pads = torch_pads[:-2]
    if mode == "constant":
        value = float(a[2]) if len(a) > 2 and a[2] is not None else 0.0
        return [F.pad(x, torch_pads, value=value)]
    return [F.pad(x, torch_pads, mode=mode)]


@_op("Resize")
def _resize(node: _Node, a: list) -> list:
    x = a[0]
    scales = a[2] if len(a) > 2 and a[2] is not None and a[2].numel() else None
    if scales is None or any(float(s) != 1.0 for s in scales[:-1]):
        raise UnsupportedGraph("Resize other than along the last axis by a scale")
    factor = float(scales[-1])
    mode = node.attrs.get("mode", "nearest")
    if mode == "nearest":
        if node.attrs.get("coordinate_transformation_mode") != "asymmetric" or factor != int(factor):
            raise UnsupportedGraph("nearest Resize other than asymmetric integer upsampling")
        return [torch.repeat_interleave(x, int(factor), dim=-1)]
    if mode == "linear" and node.attrs.get("coordinate_transformation_mode") == "half_pixel":
        shape = x.shape
        flat = x.reshape(1, -1, shape[-1])
        out = F.interpolate(flat, scale_factor=factor, mode="linear", align_corners=False, recompute_scale_factor=False)
        return [out.reshape(*shape[:-1], out.shape[-1])]
    raise UnsupportedGraph(f"Resize mode {mode}")


@_op("STFT")
def _stft(node: _Node, a: list) -> list:
    signal, step, window = a[0], int(a[1].item()), a[2]
    length = int(a[3].item()) if len(a) > 3 and a[3] is not None else window.shape[0]
    if not node.attrs.get("onesided", 1):
        raise UnsupportedGraph("two-sided STFT")
    x = signal[..., 0] if signal.dim() == 3 else signal
    frames = x.unfold(-1, length, step) * window
    spec = torch.fft.rfft(frames, dim=-1)
    real, imag = spec.real, spec.imag
    # The DC and Nyquist bins have no imaginary part, yet the graph branches on its sign
    # (phase +pi or -pi). ONNX Runtime's STFT leaves a round-off residue there: about
    # -5e-7 * real at DC and a small negative value at Nyquist. Reproduce those signs so
    # the phase fed to the vocoder's noise branch matches the runtime's.
    residue = torch.zeros_like(imag)
    residue[..., 0] = -5e-7 * real[..., 0].detach()
    residue[..., -1] = -5e-7 * real[..., -1].detach().abs().clamp_min(1e-12)
    imag = imag + residue
    return [torch.stack([real, imag], dim=-1)]


@_op("ScatterND")
def _scatter_nd(node: _Node, a: list) -> list:
    data, indices, updates = a
    if node.attrs.get("reduction", "none") != "none":
        raise UnsupportedGraph("ScatterND with reduction")
    k = indices.shape[-1]
    flat_idx = indices.reshape(-1, k).long()
    out = data.clone()
    out[tuple(flat_idx.t())] = updates.reshape(-1, *data.shape[k:]).to(out.dtype)
    return [out]


@_op("DynamicQuantizeLSTM")
def _quantized_lstm(node: _Node, a: list) -> list:
    """A bidirectional/forward LSTM with int8 weights (gate order i, o, f, c)."""
    x, w, r, bias = a[0], a[1], a[2], a[3]
    h0 = a[5] if len(a) > 5 else None
    c0 = a[6] if len(a) > 6 else None
    w_scale, w_zero, r_scale, r_zero = a[8], a[9], a[10], a[11]
    if a[4] is not None or (len(a) > 7 and a[7] is not None):
        raise UnsupportedGraph("LSTM with sequence lengths or peepholes")
    hidden = node.attrs["hidden_size"]
    n_dirs = w.shape[0]
    # Per-direction (or per-channel) scales broadcast over [dirs, in, 4h].
    w_f = (w - w_zero.reshape(n_dirs, 1, -1)) * w_scale.reshape(n_dirs, 1, -1)
    r_f = (r - r_zero.reshape(n_dirs, 1, -1)) * r_scale.reshape(n_dirs, 1, -1)
    seq, batch = x.shape[0], x.shape[1]
    outs, last_h, last_c = [], [], []
    for d in range(n_dirs):
        b = bias[d, : 4 * hidden] + bias[d, 4 * hidden :]
        h = h0[d] if h0 is not None else x.new_zeros(batch, hidden)
        c = c0[d] if c0 is not None else x.new_zeros(batch, hidden)
        x_proj = torch.matmul(x, w_f[d]) + b  # [seq, batch, 4h]
        steps = range(seq - 1, -1, -1) if d == 1 else range(seq)
        ys: list[Tensor] = [x] * seq
        for t in steps:
            gates = x_proj[t] + torch.matmul(h, r_f[d])
            i, o, f, g = gates.split(hidden, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            ys[t] = h
        outs.append(torch.stack(ys))
        last_h.append(h)
        last_c.append(c)
    y = torch.stack(outs, dim=1)  # [seq, dirs, batch, hidden]
    return [y, torch.stack(last_h), torch.stack(last_c)]
