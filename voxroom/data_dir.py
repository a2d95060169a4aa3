"""A running server's claim on its data dir, so that `voxroom enroll` can tell it is there.

Every server holds a shared lock on `<data dir>/server.lock` for as long as it runs (the kernel drops it
when the process ends, however it ends), so several servers may share a data dir. The enroll command asks
for the lock exclusively without waiting: if it cannot have it, a server is using the dir, would not see the
new voice until its next start, and would share its CPU with the command's fit.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

LOCK_NAME = "server.lock"


def hold_as_server(data_dir: Path) -> IO[bytes]:
    """Claim `data_dir` for a running server. Keep the returned file open for as long as the server runs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / LOCK_NAME, "ab")  # noqa: SIM115  (held open for the server's life)
    fcntl.flock(lock, fcntl.LOCK_SH)
    return lock


def in_use_by_a_server(data_dir: Path) -> bool:
    """Whether a running server holds `data_dir` now."""
    try:
        lock = open(data_dir / LOCK_NAME, "rb")  # noqa: SIM115  (closed below)
    except FileNotFoundError:  # no server has run on this dir
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False
