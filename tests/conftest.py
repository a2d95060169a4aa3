"""Shared fixtures: real servers started with the real `voxroom serve` command."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxroom.testing import TEST_SECRET, ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent
# Real recordings of real speakers (sources and licences in tests/data/voices/SOURCES.md).
SHARED_VOICES = REPO / "tests" / "data" / "voices"

__all__ = ["REPO", "SHARED_VOICES", "TEST_SECRET", "ServerProcess", "child_processes", "free_port"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with default settings, shared by the end-to-end tests, but for admission by predicted compute.

    That is off: the tests run two at a time (pytest-xdist), and on a CPU slower than real time, beside another
    test's renders, a message said while an earlier test's was still playing was refused as overloaded.
    Admission is tested on its own, on the fake engine (tests/e2e/test_load_behaviour.py)."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), env={"VOXROOM_MAX_FIRST_AUDIO": "0"})
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a tiny send queue, to see slow clients dropped.

    The fake engine: what is tested is fan-out of real Opus packets, whichever engine made them (the embedded
    one took 45 s for the four long messages on a CPU that renders slower than real time)."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("tight"),
        # Four long messages at once are more than admission lets in on time: it would refuse some.
        env={"VOXROOM_ENGINE": "fake", "VOXROOM_SEND_QUEUE": "96", "VOXROOM_SEND_BUFFER": "4096",
             "VOXROOM_HEARTBEAT": "600", "VOXROOM_MAX_FIRST_AUDIO": "0"},
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
    """The embedded engine with enrollment; voice fits kept short so tests stay quick.

    Admission by predicted compute is off: a fit runs beside the engine on the same two cores, and on a CPU
    that renders slower than real time a message said while another still plays was refused as overloaded
    (these tests are about a voice's life; admission is tested on its own)."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("voices"), env={"VOXROOM_FIT_CPU_S": "5", "VOXROOM_MAX_FIRST_AUDIO": "0"}
    )
    yield proc
    proc.stop()


# --- Leave nothing behind -------------------------------------------------------------------------------------
# A CI run once printed "525 passed" and then never ended. Whatever outlives the tests (a child process holding
# the output pipe, a worker thread the interpreter joins at exit) is named here, child processes are ended, and
# if the interpreter still has not exited a minute later every thread's stack is printed and the process exits
# with the tests' own status, so a hang costs a minute and says where it was instead of eating CI's time limit.
SHUTDOWN_GRACE_S = 60.0
_exit_status = 0


def child_processes(parent: int | None = None) -> list[tuple[int, str]]:
    """(pid, command) of the direct children of `parent` (this process by default), read from /proc (Linux;
    elsewhere nothing is found)."""
    parent = os.getpid() if parent is None else parent
    children = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        # multiprocessing's resource tracker ends by itself once this process has gone.
        if ppid == parent and command and "resource_tracker" not in command:
            children.append((int(entry.name), command))
    return children


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) != (0, 0)
    except ChildProcessError:  # not ours to wait for, or gone already
        return True


def _end_children(children: list[tuple[int, str]]) -> None:
    """SIGTERM, up to 5 s to exit, then SIGKILL."""
    alive = {pid for pid, _ in children}
    for pid in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if not _reaped(pid)}
        time.sleep(0.05)
    for pid in alive:
        _signal(pid, signal.SIGKILL)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    children = child_processes()
    if threads or children:
        print(f"\nstill running after the tests: threads {threads}, processes {children}", file=sys.__stderr__)
    _end_children(children)
    if hasattr(config, "workerinput"):
        # A pytest-xdist worker: it waits, idle, for the controller to end it once the other lane is done (which
        # can take minutes); the controller's own guard covers the run.
        return

    def exit_if_stuck() -> None:
        time.sleep(SHUTDOWN_GRACE_S)
        print(f"\ninterpreter still exiting after {SHUTDOWN_GRACE_S:.0f} s; its threads:", file=sys.__stderr__)
        faulthandler.dump_traceback(file=sys.__stderr__ or sys.stderr, all_threads=True)
        os._exit(_exit_status)

    threading.Thread(target=exit_if_stuck, name="exit-watchdog", daemon=True).start()
