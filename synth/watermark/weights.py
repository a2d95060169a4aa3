"""Find and verify the watermark network's weights, shipped inside the `resemble-perth` wheel.

The weights are an MIT-licensed checkpoint (Resemble AI, "PerthNet implicit", step 250000).
We never import the `perth` package itself (it needs torchaudio); we only read its data
file, after checking it against a pinned SHA-256 so a changed or damaged file fails closed.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch

PACKAGE = "resemble-perth==1.0.1"
CHECKPOINT_RELATIVE_PATH = Path("perth_net", "pretrained", "implicit", "perth_net_250000.pth.tar")
CHECKPOINT_SHA256 = "a15bce457ebc53ce5e6c9c3f11df78cf7ee2bf9cdab0a798902135b4c4027670"
INSTALL_HINT = f"install it with: pip install --no-deps {PACKAGE}"


class WatermarkWeightsError(RuntimeError):
    """The watermark weights are missing or are not the exact file we tested; nothing is marked."""


def default_checkpoint_path() -> Path:
    """Where the installed wheel keeps the checkpoint (found without importing the package)."""
    spec = importlib.util.find_spec("perth")
    if spec is None or not spec.submodule_search_locations:
        raise WatermarkWeightsError(f"The watermark weights package is not installed; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / CHECKPOINT_RELATIVE_PATH


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_verified_state(path: Path | None = None, expected_sha256: str = CHECKPOINT_SHA256) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, after the file's SHA-256 matched `expected_sha256`."""
    path = default_checkpoint_path() if path is None else Path(path)
    if not path.is_file():
        raise WatermarkWeightsError(f"Watermark weights not found at {path}; {INSTALL_HINT}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise WatermarkWeightsError(
            f"Watermark weights at {path} have SHA-256 {actual}, expected {expected_sha256}; "
            f"refusing to run with unverified weights ({INSTALL_HINT})"
        )
    # weights_only: the file is a pickle; never let it run code even after the hash matched.
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise WatermarkWeightsError(f"Watermark weights at {path} are not a model checkpoint")
    return state
