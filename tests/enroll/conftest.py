"""Fixtures for enrollment tests: the real recordings, bad recordings built from them, real workers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synth.audio_io import decode_audio
from synth.enroll.jobs import EnrollmentWorkers, ProgressCallback

VOICES = Path(__file__).resolve().parents[1] / "data" / "voices"
RATE = 24000


def voice_path(name: str) -> Path:
    return VOICES / name


def load_voice(name: str) -> np.ndarray:
    """A recording from the shared voices, decoded with PyAV to 24 kHz mono float32."""
    return decode_audio(voice_path(name).read_bytes(), sample_rate=RATE)


def wav_bytes(pcm: np.ndarray, rate: int = RATE) -> bytes:
    """16-bit mono WAV in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())
    return buffer.getvalue()


def encoded_bytes(pcm: np.ndarray, container: str, codec: str, rate: int) -> bytes:
    """`pcm` (24 kHz) encoded by PyAV into another container/codec, in memory."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name if stream.format else "s16", layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray((pcm * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
        frame.sample_rate = RATE
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def two_speakers(first: str, second: str, seconds: float = 12.0) -> np.ndarray:
    """`seconds` of one speaker followed by `seconds` of another."""
    a, b = load_voice(first), load_voice(second)
    n = int(seconds * RATE)
    return np.concatenate([a[:n], b[:n]])


def white_noise(seconds: float = 20.0, level: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * level).astype(np.float32)


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> None:
    """In-process analysis runs single-threaded, as in the worker (two threads beside other load spin)."""
    import torch

    torch.set_num_threads(1)


class AnalysesOnce(EnrollmentWorkers):
    """The real background processes, except that a recording analysed once in this test session is not analysed
    again: the analysis is deterministic (the same bytes, limits and language give the same result) and took 16 s of
    a slow CPU for a minute's recording, five times over for one file's tests. Its progress is told again as it was.
    Tests of the analysis itself call it directly (test_quality, test_formats_and_features, test_cli)."""

    def __init__(self) -> None:
        super().__init__(niceness=0)
        self._analysed: dict[tuple[str, str, str], tuple[Any, list[tuple[float, str]]]] = {}

    async def analyse(
        self, data: bytes, limits: Any, language_hint: str, progress: ProgressCallback | None = None
    ) -> Any:
        key = (hashlib.sha256(data).hexdigest(), repr(limits), language_hint)
        if key in self._analysed:
            result, told = self._analysed[key]
            for fraction, stage in told:
                if progress is not None:
                    progress(fraction, stage)
            return result
        told = []

        def tell(fraction: float, stage: str) -> None:
            told.append((fraction, stage))
            if progress is not None:
                progress(fraction, stage)

        result = await super().analyse(data, limits, language_hint, tell)
        self._analysed[key] = (result, told)
        return result


@pytest.fixture(scope="session")
def workers() -> Iterator[EnrollmentWorkers]:
    """The real background processes, shared by every test that enrolls (they take seconds to start)."""
    pool = AnalysesOnce()
    yield pool
    pool.close()


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def leaked_runs(root: Path, needles: list[bytes]) -> list[tuple[Path, int]]:
    """(file, needle index) for every needle found in any file under `root`."""
    found = []
    for path in files_under(root):
        blob = path.read_bytes()
        for i, needle in enumerate(needles):
            if needle in blob:
                found.append((path, i))
    return found


def sample_runs(data: bytes, count: int = 64, length: int = 32, seed: int = 1) -> list[bytes]:
    """`count` byte runs of `length` taken from all over `data`, skipping runs of one repeated byte."""
    rng = np.random.default_rng(seed)
    runs: list[bytes] = []
    while len(runs) < count:
        start = int(rng.integers(0, len(data) - length))
        run = data[start : start + length]
        if len(set(run)) > 4:
            runs.append(run)
    return runs


@pytest.fixture(scope="session")
def kokoro():  # type: ignore[no-untyped-def]
    """The embedded engine, single-threaded."""
    from synth.engines.kokoro import KokoroEngine

    engine = KokoroEngine(threads=1)
    yield engine
    engine.close()


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process has run (user and system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def fit_in_background(
    workers: EnrollmentWorkers, analysis: Any, budget_s: float, stages: list[str]
) -> asyncio.Task:  # type: ignore[type-arg]
    """An English fit of an analysed recording from its nearest stock voice, as a task; its stages go to `stages`."""
    from synth.fit.stock import stock_packs

    return asyncio.ensure_future(workers.fit(
        analysis.target, "en", stock_packs()[analysis.start_stock], analysis.judge_print, cpu_budget_s=budget_s,
        progress=lambda _fraction, stage: stages.append(stage),
    ))
