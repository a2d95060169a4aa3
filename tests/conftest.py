"""Shared fixtures: real servers started with the real `voxroom serve` command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voxroom.testing import TEST_SECRET, ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent
# Real recordings of real speakers (sources and licences in tests/data/voices/SOURCES.md).
SHARED_VOICES = REPO / "tests" / "data" / "voices"

__all__ = ["REPO", "SHARED_VOICES", "TEST_SECRET", "ServerProcess", "free_port"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with default settings, shared by the end-to-end tests."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a tiny send queue, to see slow clients dropped."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("tight"),
        # Four long messages at once are more than two cores render on time: admission would refuse them.
        env={"VOXROOM_SEND_QUEUE": "96", "VOXROOM_SEND_BUFFER": "4096", "VOXROOM_HEARTBEAT": "600",
             "VOXROOM_MAX_FIRST_AUDIO": "0"},
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The fake engine (fast, deterministic) with room for one utterance at a time."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("fake"), env={"VOXROOM_ENGINE": "fake", "VOXROOM_MAX_ACTIVE": "1"}
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The embedded engine with enrollment; voice fits kept short so tests stay quick."""
    proc = ServerProcess(tmp_path_factory.mktemp("voices"), env={"VOXROOM_FIT_CPU_S": "5"})
    yield proc
    proc.stop()
