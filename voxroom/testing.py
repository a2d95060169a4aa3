"""A test harness host apps can reuse: run a real `voxroom serve` on a free port and mint its tokens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

from gateway.auth import TokenAuthority

TEST_SECRET = "test-secret-for-voxroom-tests-only"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A `voxroom serve` subprocess on a free port, with a token minter for its secret."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        self.authority = TokenAuthority(TEST_SECRET)
        full_env = {
            **os.environ,
            "VOXROOM_SECRET": TEST_SECRET,
            "VOXROOM_DATA_DIR": str(data_dir),
            "VOXROOM_PORT": str(self.port),
            "VOXROOM_HOST": "127.0.0.1",
            **(env or {}),
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop)
        # Run from the data dir: `python -m` puts its working directory first on sys.path, so started from a
        # checkout it would import that checkout's code whatever PYTHONPATH says (a benchmark's `--env
        # PYTHONPATH=<other checkout>` silently measured this one).
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voxroom.cli", "serve"],
            env=full_env, cwd=data_dir, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def token(self, user: str, **kwargs: object) -> str:
        return self.authority.mint(user, **kwargs)  # type: ignore[arg-type]

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.log_path.read_text()}")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` s with a warning: a server that needs killing has a shutdown bug
        (one hid for sessions here: a running voice fit kept the process alive until it finished)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            warnings.warn(
                f"voxroom serve did not exit within {timeout:.0f} s of SIGTERM and was killed (log: {self.log_path})",
                RuntimeWarning,
                stacklevel=2,
            )
        self._log.close()
