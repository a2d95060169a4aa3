"""The attribute-style config object stored inside SoVITS `.pth` files.

Official SoVITS weights pickle their training config as `utils.HParams` (a class from a
module named `utils`). The loader maps that name onto this class and nothing else, so a
config can be read back without importing or trusting any foreign code.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

PICKLED_NAME = "utils.HParams"


class HParams:
    """Nested attribute access over a dict: `hps.model.hidden_channels`."""

    def __init__(self, **values: Any) -> None:
        for key, value in values.items():
            setattr(self, key, HParams(**value) if isinstance(value, dict) else value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Called by the restricted unpickler (BUILD); nested HParams arrive already built.
        self.__dict__.update(state)

    def __getattr__(self, name: str) -> Any:
        # Only reached for missing attributes; declared so nested configs type-check.
        raise AttributeError(name)

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, HParams) else v for k, v in self.__dict__.items()}

    def __repr__(self) -> str:
        return f"HParams({self.to_dict()!r})"


@contextlib.contextmanager
def pickled_as_official_name() -> Iterator[None]:
    """While active, HParams pickles under the official name `utils.HParams`.

    Only the tiny-model builder needs this, to write files in the exact official layout.
    """
    previous_module = sys.modules.get("utils")
    shim = types.ModuleType("utils")
    shim.HParams = HParams  # type: ignore[attr-defined]
    saved = (HParams.__module__, HParams.__qualname__)
    HParams.__module__, HParams.__qualname__ = "utils", "HParams"
    sys.modules["utils"] = shim
    try:
        yield
    finally:
        HParams.__module__, HParams.__qualname__ = saved
        if previous_module is None:
            sys.modules.pop("utils", None)
        else:
            sys.modules["utils"] = previous_module
