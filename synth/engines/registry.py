"""Engines by name. Heavy backends are imported only when asked for, with an install hint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synth.engines.base import Engine


def _kokoro(**options: Any) -> Engine:
    from synth.engines.kokoro import KokoroEngine

    return KokoroEngine(**options)


def _gptsovits(**options: Any) -> Engine:
    try:
        from synth.engines.gptsovits.engine import create_gptsovits_engine
    except ImportError as exc:  # torch and onnx are an optional extra
        raise RuntimeError(
            f"the gpt-sovits engine needs the optional dependencies: pip install 'voxroom[gptsovits]' ({exc})"
        ) from exc
    return create_gptsovits_engine(**options)


def _fake(**options: Any) -> Engine:
    from synth.engines.fake import FakeEngine

    return FakeEngine(**options)


_FACTORIES: dict[str, Callable[..., Engine]] = {"kokoro": _kokoro, "gpt-sovits": _gptsovits, "fake": _fake}


def register(name: str, factory: Callable[..., Engine]) -> None:
    _FACTORIES[name] = factory


def engine_names() -> list[str]:
    return sorted(_FACTORIES)


def create_engine(name: str, **options: Any) -> Engine:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(engine_names())}") from None
    return factory(**options)
