"""`voxroom enroll FILE --user NAME`: the same gate and store from the command line, with progress."""

from __future__ import annotations

import concurrent.futures
import io
import os
import time
from pathlib import Path

from synth.enroll import quality
from synth.enroll.cli import enroll_file_command, open_service
from tests.conftest import child_processes
from tests.enroll.conftest import load_voice, voice_path, wav_bytes


def test_enrolls_a_good_recording_and_shows_progress(tmp_path: Path) -> None:
    out = io.StringIO()
    code = enroll_file_command(
        voice_path("en_1998_enroll.wav"), "alice", data_dir=tmp_path, fit_cpu_budget_s=1.0, out=out
    )
    text = out.getvalue()
    assert code == 0, text
    assert "checking:" in text and "finding speech" in text
    assert "-> ok" in text and "Enrolled alice" in text
    assert "Voice ready: similarity" in text
    record = open_service(tmp_path).store.load("alice")
    assert record is not None and record.meta["status"] == "ready"


def niceness_of_new_workers(before: set[int]) -> set[int]:
    """The niceness of each multiprocessing worker this process started since `before` (pids) was taken."""
    seen = set()
    for pid, command in child_processes():
        if pid not in before and "multiprocessing" in command:
            try:
                seen.add(os.getpriority(os.PRIO_PROCESS, pid))
            except ProcessLookupError:  # it ended between the listing and the question
                pass
    return seen


def test_refuses_a_short_clip_with_advice_and_its_worker_runs_at_the_commands_priority(tmp_path: Path) -> None:
    clip = tmp_path / "short.wav"
    clip.write_bytes(wav_bytes(load_voice("en_1998_enroll.wav")[: 3 * 24000]))
    out = io.StringIO()
    before = {pid for pid, _ in child_processes()}
    niceness: set[int] = set()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        running = thread.submit(enroll_file_command, clip, "bob", data_dir=tmp_path / "data", out=out)
        while not running.done():
            niceness |= niceness_of_new_workers(before)
            time.sleep(0.05)
        code = running.result()
    # No server runs beside the command and its user waits for it: its analysis is not niced, as a server's is.
    assert niceness == {os.getpriority(os.PRIO_PROCESS, 0)}
    assert code == 2
    assert quality.advice_speak_longer(7) in out.getvalue()
    assert not list((tmp_path / "data" / "voices").glob("*"))


def test_unusable_files_exit_1(tmp_path: Path) -> None:
    out = io.StringIO()
    assert enroll_file_command(tmp_path / "notes.txt", "bob", data_dir=tmp_path, out=out) == 1
    assert enroll_file_command(tmp_path / "missing.wav", "bob", data_dir=tmp_path, out=out) == 1
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(bytes(range(256)) * 16)
    assert enroll_file_command(garbage, "bob", data_dir=tmp_path, out=out) == 1
    assert "error:" in out.getvalue()
