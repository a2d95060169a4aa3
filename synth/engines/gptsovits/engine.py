"""GPT-SoVITS v2 behind the project's Engine interface.

    engine = create_gptsovits_engine(Path("models/gpt-sovits-v2"))
    voice = engine.voice_from_recording("acct-1", audio, 24000, transcript="...", lang="en")
    engine.synthesize_batch([ClauseRequest("Hello there.", "en", voice), ...])

`synthesize_batch` decodes every clause in one continuous batch and renders each whole;
`stream_clause` yields chunks while the tokens are still being sampled. Stock voices are
reference recordings the deployer puts in `<models>/voices/<name>.wav` (with an optional
`<name>.json` holding {"transcript": ..., "lang": ...}); the official release has none.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from synth.engines.base import ClauseRequest, Engine, StockVoice, Voice
from synth.engines.gptsovits.backend import Backend, TorchBackend
from synth.engines.gptsovits.batching import DecodeRequest, decode_all
from synth.engines.gptsovits.bert import BertFeaturizer
from synth.engines.gptsovits.checkpoint import CheckpointError
from synth.engines.gptsovits.frontend import (
    FrontendError,
    end_with_punctuation,
    phonemize,
    phonemize_aligned,
    phones_to_ids,
)
from synth.engines.gptsovits.loader import BERT_DIR, ModelFiles, load_torch_models
from synth.engines.gptsovits.sampling import SamplingParams
from synth.engines.gptsovits.streaming import ContinuousSynthesizer, Utterance
from synth.engines.gptsovits.t2s import BERT_DIM
from synth.engines.gptsovits.vocoder import ChunkPolicy, VocodeRequest, frame_noise, vocode_batch
from synth.engines.gptsovits.voice import GptSovitsVoice, VoiceError, make_voice
from voxroom.errors import ErrorCode, VoxroomError

ENGINE_NAME = "gpt-sovits"
LANGUAGES = ("zh", "en", "ja")


@dataclasses.dataclass(frozen=True)
class GptSovitsOptions:
    max_batch: int = 8
    sampling: SamplingParams = SamplingParams()
    noise_scale: float = 0.5
    chunks: ChunkPolicy = ChunkPolicy()


class GptSovitsEngine(Engine):
    name = ENGINE_NAME
    sample_rate = 32000

    def __init__(
        self,
        backend: Backend,
        options: GptSovitsOptions | None = None,
        voices_dir: Path | None = None,
        bert: BertFeaturizer | None = None,
    ) -> None:
        self.backend = backend
        self.options = options or GptSovitsOptions()
        self.max_batch = self.options.max_batch
        self.sample_rate = backend.dims.sample_rate
        self.model_version = f"gpt-sovits-v2/{backend.name}"
        self.voices_dir = voices_dir
        self._stock: dict[str, Voice] = {}
        self.bert = bert  # Chinese BERT features when the deployer supplied the model; zeros otherwise
        self._prompt_bert_cache: dict[tuple[str, int], np.ndarray] = {}
        self._lock = threading.Lock()  # one batch at a time through the shared backend

    # --- voices --------------------------------------------------------------------------

    def voice_from_recording(
        self,
        owner: str,
        audio: np.ndarray,
        sample_rate: int,
        transcript: str | None = None,
        lang: str = "zh",
        version: int = 1,
    ) -> Voice:
        """An enrolled voice from the owner's recording (transcript optional, see voice.py)."""
        try:
            params = make_voice(self.backend, audio, sample_rate, transcript, lang)
        except (VoiceError, FrontendError) as exc:
            raise VoxroomError(ErrorCode.BAD_REQUEST, str(exc)) from exc
        return Voice(id=owner, engine=self.name, params=params, version=version, owner=owner)

    def stock_voices(self) -> list[StockVoice]:
        if self.voices_dir is None or not self.voices_dir.is_dir():
            return []
        return [StockVoice(p.stem, LANGUAGES) for p in sorted(self.voices_dir.glob("*.wav"))]

    def stock_voice(self, name: str) -> Voice:
        if name not in self._stock:
            path = (self.voices_dir or Path("/nonexistent")) / f"{name}.wav"
            if "/" in name or not path.is_file():
                raise KeyError(name)
            import soundfile as sf

            audio, sr = sf.read(path, dtype="float32", always_2d=True)
            meta_path = path.with_suffix(".json")
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            params = make_voice(self.backend, audio.mean(axis=1), sr, meta.get("transcript"), meta.get("lang", "zh"))
            self._stock[name] = Voice(id=f"stock:{name}", engine=self.name, params=params)
        return self._stock[name]

    # --- synthesis -----------------------------------------------------------------------

    def synthesize_batch(self, clauses: Sequence[ClauseRequest]) -> list[np.ndarray]:
        if len(clauses) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} clauses per batch, got {len(clauses)}")
        utterances = [self._utterance(c) for c in clauses]
        with self._lock:
            tokens = decode_all(self.backend, [u.decode for u in utterances], max_batch=self.max_batch)
            requests = [
                VocodeRequest(
                    np.asarray(t, np.int64),
                    u.phones,
                    u.timbre,
                    frame_noise(u.noise_seed, self.backend.dims.inter_channels, u.noise_scale),
                )
                for t, u in zip(tokens, utterances, strict=True)
            ]
            renderable = [i for i, r in enumerate(requests) if len(r.tokens)]
            audio = [np.zeros(0, np.float32)] * len(requests)
            if renderable:
                for i, a in zip(renderable, vocode_batch(self.backend, [requests[i] for i in renderable]), strict=True):
                    audio[i] = a
        return [np.clip(a, -1.0, 1.0) for a in audio]

    def stream_clause(self, clause: ClauseRequest) -> Iterator[np.ndarray]:
        utterance = self._utterance(clause)
        synth = ContinuousSynthesizer(self.backend, max_batch=1, policy=self.options.chunks)
        synth.submit(utterance)
        while synth.has_work():
            with self._lock:  # held per step, never across a yield: an abandoned stream blocks nobody
                events = synth.step()
            for event in events:
                if len(event.audio):
                    yield np.clip(event.audio, -1.0, 1.0)

    def continuous(self) -> ContinuousSynthesizer:
        """A continuous-batching synthesizer on this engine's backend, for a scheduler to drive.

        Submit with `engine.utterance(clause)`; do not interleave with `synthesize_batch` calls.
        """
        return ContinuousSynthesizer(self.backend, max_batch=self.max_batch, policy=self.options.chunks)

    def utterance(self, clause: ClauseRequest) -> Utterance:
        return self._utterance(clause)

    def warm_up(self) -> None:
        dims = self.backend.dims
        phones = np.asarray(phones_to_ids(phonemize("你好。", "zh")), np.int64)
        quick = dataclasses.replace(self.options.sampling, min_tokens=2, max_tokens=2)
        tokens = decode_all(self.backend, [DecodeRequest(phones, np.zeros(0, np.int64), quick)])[0] or [0]
        silent = frame_noise(0, dims.inter_channels, 0.0)
        timbre = np.zeros(dims.gin_channels, np.float32)
        vocode_batch(self.backend, [VocodeRequest(np.asarray(tokens, np.int64), phones, timbre, silent)])

    def _bert_features(self, lang: str, units: list[tuple[str, int]]) -> np.ndarray:
        assert self.bert is not None
        if lang == "zh":
            return self.bert.features(units)
        return np.zeros((BERT_DIM, sum(n for _, n in units)), np.float32)

    def _prompt_bert(self, voice: Voice) -> np.ndarray:
        params: GptSovitsVoice = voice.params
        key = (voice.id, voice.version)
        if key not in self._prompt_bert_cache:
            if len(params.prompt_phones) and params.prompt_text:
                features = self._bert_features(
                    params.prompt_lang, phonemize_aligned(params.prompt_text, params.prompt_lang)[1]
                )
            else:
                features = np.zeros((BERT_DIM, 0), np.float32)
            if features.shape[1] != len(params.prompt_phones):
                features = np.zeros((BERT_DIM, len(params.prompt_phones)), np.float32)
            self._prompt_bert_cache[key] = features
        return self._prompt_bert_cache[key]

    def _utterance(self, clause: ClauseRequest) -> Utterance:
        voice = clause.voice
        if voice.engine != self.name or not isinstance(voice.params, GptSovitsVoice):
            raise VoxroomError(ErrorCode.BAD_REQUEST, f"voice {voice.id} was made for the {voice.engine} engine")
        try:
            symbols, units = phonemize_aligned(end_with_punctuation(clause.text, clause.lang), clause.lang)
        except FrontendError as exc:
            raise VoxroomError(ErrorCode.BAD_REQUEST, str(exc)) from exc
        phones = np.asarray(phones_to_ids(symbols), np.int64)
        params: GptSovitsVoice = voice.params
        seed = zlib.crc32(f"{voice.id}/{voice.version}/{clause.lang}/{clause.text}".encode())
        sampling = dataclasses.replace(self.options.sampling, seed=seed)
        bert = None
        if self.bert is not None:
            bert = np.concatenate([self._prompt_bert(voice), self._bert_features(clause.lang, units)], axis=1)
        all_phones = np.concatenate([params.prompt_phones, phones])
        decode = DecodeRequest(all_phones, params.prompt_tokens, sampling, bert)
        return Utterance(decode, phones, params.timbre, noise_seed=seed, noise_scale=self.options.noise_scale)


def voice_to_arrays(params: GptSovitsVoice) -> dict[str, np.ndarray]:
    """What an enrolled voice stores (for the encrypted voice store)."""
    return {
        "prompt_tokens": params.prompt_tokens,
        "prompt_phones": params.prompt_phones,
        "timbre": params.timbre,
        "prompt_text": np.array(params.prompt_text),
        "prompt_lang": np.array(params.prompt_lang),
    }


def voice_from_arrays(arrays: dict[str, np.ndarray]) -> GptSovitsVoice:
    try:
        return GptSovitsVoice(
            np.asarray(arrays["prompt_tokens"], np.int64),
            np.asarray(arrays["prompt_phones"], np.int64),
            np.asarray(arrays["timbre"], np.float32),
            str(arrays.get("prompt_text", "")),
            str(arrays.get("prompt_lang", "")),
        )
    except KeyError as exc:
        raise ValueError(f"stored GPT-SoVITS voice lacks {exc.args[0]}") from exc


def create_gptsovits_engine(
    models_dir: Path,
    *,
    runtime: str = "onnx",
    onnx_dir: Path | None = None,
    threads: int = 1,
    fp16: bool = True,
    options: GptSovitsOptions | None = None,
    bert: bool | None = None,
) -> GptSovitsEngine:
    """The engine from a models directory (official layout, see loader.py).

    runtime "onnx" uses `onnx_dir` (default `<models>/onnx`), exporting there first when it
    is missing; "torch" runs the PyTorch reference graph. bert: None uses
    `<models>/chinese-roberta-wwm-ext-large` when it is there, True requires it, False never.
    Nothing is downloaded here.
    """
    import torch

    torch.set_num_threads(max(1, threads))
    files = ModelFiles.find(Path(models_dir))
    models = load_torch_models(files)
    reference = TorchBackend(models)
    backend: Backend = reference
    if runtime == "onnx":
        from synth.engines.gptsovits.onnx_export import MANIFEST, export_all
        from synth.engines.gptsovits.runtime import OrtBackend

        target = Path(onnx_dir) if onnx_dir is not None else Path(models_dir) / "onnx"
        if not (target / MANIFEST).exists():
            export_all(models, target)
        backend = OrtBackend(target, reference.dims, threads=threads, fp16=fp16)
    elif runtime != "torch":
        raise ValueError(f"runtime must be 'onnx' or 'torch', not {runtime!r}")
    featurizer = None
    if bert or (bert is None and files.bert_dir is not None):
        if files.bert_dir is None:
            raise CheckpointError(f"BERT was asked for but {Path(models_dir) / BERT_DIR} is missing")
        featurizer = BertFeaturizer(files.bert_dir)
    return GptSovitsEngine(backend, options, voices_dir=Path(models_dir) / "voices", bert=featurizer)
