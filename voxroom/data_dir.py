"""Who is using a data dir: running servers, or one `voxroom enroll`, never both.

Every server holds a shared lock on `<data dir>/server.lock` for as long as it runs, so several servers may
share a data dir; `voxroom enroll` holds it exclusively for as long as it runs. Neither waits for the other:
a server would not see a voice the command enrolls until its next start, and the command's fit would take
the CPU that synthesis needs. The kernel drops a lock when its process ends, however it ends.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

LOCK_NAME = "server.lock"


class DataDirInUse(Exception):
    """The other kind of user holds the data dir."""


def hold_as_server(data_dir: Path) -> IO[bytes]:
    """Claim `data_dir` for a running server. Keep the returned file open for as long as the server runs."""
    return _hold(data_dir, fcntl.LOCK_SH, f"voxroom enroll is running on {data_dir}: start the server once it ends")


def hold_for_enrollment(data_dir: Path) -> IO[bytes]:
    """Claim `data_dir` for `voxroom enroll`. Keep the returned file open until the command ends."""
    return _hold(
        data_dir,
        fcntl.LOCK_EX,
        f"a server (or another voxroom enroll) is running on {data_dir}: upload through POST /v1/voices or the "
        "demo page, or stop the server and run this again",
    )


def _hold(data_dir: Path, kind: int, refusal: str) -> IO[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / LOCK_NAME, "ab")  # noqa: SIM115  (held open by the caller)
    try:
        fcntl.flock(lock, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise DataDirInUse(refusal) from None
    return lock
