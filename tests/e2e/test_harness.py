"""The test harness host apps reuse (voxroom.testing) says when a server had to be killed."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxroom.testing import ServerProcess


def test_a_server_that_outlives_its_stop_timeout_is_killed_with_a_warning(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"VOXROOM_ENGINE": "fake"})
    with pytest.warns(RuntimeWarning, match="did not exit within 0 s of SIGTERM"):
        server.stop(timeout=0.0)  # no server exits that fast
    assert server.process.returncode == -9  # SIGKILL


def test_a_server_that_exits_on_sigterm_stops_quietly(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    server = ServerProcess(tmp_path, env={"VOXROOM_ENGINE": "fake"})
    server.stop()
    assert server.process.returncode == 0
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
