"""The Kokoro int8 graph cut in three, so one clause can be decoded in pieces.

The packaged graph goes from tokens to audio in one call; 90% of its time is the
decoder (the iSTFTNet generator), whose cost grows with the clause's length. Cutting
the graph where the decoder begins lets the first piece of a clause be heard after
about a fifth of a second whatever the clause's length:

- front: tokens, style, speed -> aligned text features [1, 512, T], F0 [1, 2T] and
  energy [1, 2T], with T frames of 25 ms (600 samples at 24 kHz). Cheap.
- decoder: any window of those frames (and the style) -> its audio. One added input,
  the harmonic source's starting phase, so a window that does not start at frame 0
  carries on the sine where the frames before it left it.
  A second added input, the voice's per-layer timbre (synth.engines.kokoro_layers).
- phase: F0 -> the harmonic source's cumulative phase, per half-frame and harmonic.
  The starting phase of a window at frame a is this at half-frame 2a - 1.

Decoding all frames at once gives exactly the packaged graph's audio. A window differs
from the whole in two ways only: its instance norms see only its own frames, and its
convolutions see no further than its edges. Decoding a context of frames on each side
and crossfading the seam keeps it close: over 5 voices x 8 sentences, a clause streamed
in two windows scored 0.95 judge cosine to its whole render (DNSMOS 3.08 against 3.11).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from synth.engines.kokoro_layers import LAYER_STYLE_INPUT, add_layer_style_input, zero_layers
from synth.yielding import wait_while_rendering

SAMPLES_PER_FRAME = 600  # one aligned text frame is 25 ms at 24 kHz
HARMONICS = 9  # the harmonic source's sines: F0 and 8 overtones

# Tensor names in the packaged graph where the decoder begins.
_FEATURES = "/encoder/MatMul_1_output_0"
_F0 = "/encoder/Reshape_output_0"
_ENERGY = "/encoder/Reshape_1_output_0"
_SINE = "/decoder/decoder/generator/m_source/l_sin_gen/"
_PHASE = _SINE + "CumSum_output_0"
_PHASE_CONSUMER = _SINE + "Mul_2"
PHASE_INPUT = "phase0"
# What a stock voice feeds the per-layer timbre input: made once, not per decoder call.
_NO_LAYERS = zero_layers()
_NO_LAYERS.flags.writeable = False


class GraphLayoutError(RuntimeError):
    """The packaged graph is not laid out as this module expects (another export of the model)."""


@dataclasses.dataclass(frozen=True)
class Features:
    """What the front computes for one clause: the decoder's inputs, frame by frame."""

    text: np.ndarray  # [1, 512, T]
    f0: np.ndarray  # [1, 2T]
    energy: np.ndarray  # [1, 2T]

    @property
    def frames(self) -> int:
        return int(self.text.shape[2])

    def lead_frames(self) -> int:
        """Frames before the first spoken token: the leading pad token's frames share one feature column."""
        columns = self.text[0]
        same = np.all(columns == columns[:, :1], axis=0)
        return int(np.argmin(same)) if not same.all() else self.frames


def split_graph(model_path: str | Path) -> tuple[bytes, bytes, bytes]:
    """Serialised (front, decoder, phase) graphs cut from the packaged model."""
    import onnx
    from onnx import TensorProto, helper, utils

    model = onnx.load(str(model_path))
    names = {out for node in model.graph.node for out in node.output}
    missing = [name for name in (_FEATURES, _F0, _ENERGY, _PHASE) if name not in names]
    if missing:
        raise GraphLayoutError(f"the Kokoro graph has no tensor {missing[0]!r}: cannot cut it for streaming")
    extractor = utils.Extractor(model)
    front = extractor.extract_model(["tokens", "style", "speed"], [_FEATURES, _F0, _ENERGY])
    decoder = extractor.extract_model([_FEATURES, _F0, _ENERGY, "style"], ["audio"])
    phase = extractor.extract_model([_F0], [_PHASE])
    # The decoder's sine source starts at phase0 instead of 0: cumsum + phase0 feeds what cumsum fed.
    shifted = _PHASE + "_shifted"
    consumers = [node for node in decoder.graph.node if _PHASE in node.input]
    if [node.name for node in consumers] != [_PHASE_CONSUMER]:
        raise GraphLayoutError("the Kokoro graph's harmonic source is not laid out as expected")
    consumers[0].input[list(consumers[0].input).index(_PHASE)] = shifted
    cumsum_at = next(i for i, node in enumerate(decoder.graph.node) if _PHASE in node.output)
    decoder.graph.node.insert(cumsum_at + 1, helper.make_node("Add", [_PHASE, PHASE_INPUT], [shifted]))
    decoder.graph.input.append(helper.make_tensor_value_info(PHASE_INPUT, TensorProto.FLOAT, [1, 1, HARMONICS]))
    add_layer_style_input(decoder)
    return front.SerializeToString(), decoder.SerializeToString(), phase.SerializeToString()


@dataclasses.dataclass(frozen=True)
class Window:
    """Decode frames [start, end); keep the audio of frames [keep_from, keep_to)."""

    start: int
    end: int
    keep_from: int
    keep_to: int


def first_piece_frames(spoken: int, *, context: int, minimum: int, call_s: float, per_frame_s: float) -> int:
    """Frames of speech in the first piece so that its audio lasts while the rest is decoded.

    The rest (spoken - n frames, plus context) takes call_s + per_frame_s * frames to decode, and must be done
    before the first piece's n frames of 25 ms have played: n * 0.025 >= call_s + per_frame_s * (spoken - n +
    context). A slower machine (a larger per_frame_s) gets a longer first piece, not a gap.
    """
    frame_s = SAMPLES_PER_FRAME / 24000
    needed = (call_s + per_frame_s * (spoken + context)) / (frame_s + per_frame_s)
    return max(minimum, math.ceil(needed))


def chunk_plan(frames: int, *, first_until: int, context: int) -> list[Window]:
    """At most two windows: the first piece up to `first_until`, then the rest, each with `context` frames of
    overlap, so there is one seam. A clause with little after the first piece is decoded whole: two windows
    would cost more than one and save nothing."""
    if first_until + 3 * context >= frames:
        return [Window(0, frames, 0, frames)]
    return [
        Window(0, first_until + context, 0, first_until),
        Window(max(0, first_until - context), frames, first_until, frames),
    ]


def crossfade(previous_tail: np.ndarray, current_head: np.ndarray) -> np.ndarray:
    """Equal-length overlap of two windows' audio, faded linearly from the first into the second."""
    weight = np.linspace(0.0, 1.0, previous_tail.size, dtype=np.float32)
    return previous_tail * (1.0 - weight) + current_head * weight


class SplitKokoro:
    """Runs the three graphs; blocking; safe to call from several threads (ONNX Runtime sessions are)."""

    def __init__(self, sessions: tuple[object, object, object], run_options: object | None = None) -> None:
        self._front, self._decoder, self._phase = sessions
        self._run_options = run_options

    def features(self, tokens: list[int], style: np.ndarray, speed: float) -> Features:
        wait_while_rendering()  # in a fit process, the server's speech first; elsewhere it returns at once
        text, f0, energy = self._front.run(  # type: ignore[attr-defined]
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": style,
                "speed": np.array([speed], dtype=np.float32),
            },
            self._run_options,
        )
        return Features(text, f0, energy)

    def phase(self, features: Features) -> np.ndarray:
        wait_while_rendering()
        (phase,) = self._phase.run(None, {_F0: features.f0}, self._run_options)  # type: ignore[attr-defined]
        return np.asarray(phase, dtype=np.float32)

    def decode(
        self,
        features: Features,
        style: np.ndarray,
        start: int,
        end: int,
        phase: np.ndarray | None,
        layers: np.ndarray | None = None,
    ) -> np.ndarray:
        """Audio of frames [start, end); `phase` (from `phase()`) is needed when start > 0; `layers` is the
        voice's per-layer timbre (synth.engines.kokoro_layers), none for a stock voice."""
        phase0 = np.zeros((1, 1, HARMONICS), np.float32)
        if start > 0:
            if phase is None:
                raise ValueError("a window after frame 0 needs the clause's phase")
            phase0 = phase[:, 2 * start - 1 : 2 * start, :]
        wait_while_rendering()
        (audio,) = self._decoder.run(  # type: ignore[attr-defined]
            None,
            {
                _FEATURES: features.text[:, :, start:end],
                _F0: features.f0[:, 2 * start : 2 * end],
                _ENERGY: features.energy[:, 2 * start : 2 * end],
                "style": style,
                PHASE_INPUT: phase0,
                LAYER_STYLE_INPUT: _NO_LAYERS if layers is None else layers,
            },
            self._run_options,
        )
        return np.asarray(audio, dtype=np.float32).reshape(-1)
