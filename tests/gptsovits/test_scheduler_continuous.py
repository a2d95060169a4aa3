"""The scheduler drives GPT-SoVITS row by row: clauses join between steps and leave when they end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.engines.base import ClauseRequest
from synth.engines.gptsovits.engine import GptSovitsEngine, GptSovitsOptions, create_gptsovits_engine
from synth.engines.gptsovits.sampling import SamplingParams
from synth.scheduler import ClauseDropped, Scheduler
from tests.conftest import SHARED_VOICES
from voxroom.metrics import Metrics

OPTIONS = GptSovitsOptions(max_batch=2, sampling=SamplingParams(min_tokens=8, max_tokens=16))


@pytest.fixture(scope="module")
def engine(tiny_dir: Path, onnx_dir: Path) -> GptSovitsEngine:
    return create_gptsovits_engine(tiny_dir, runtime="onnx", onnx_dir=onnx_dir, options=OPTIONS)


async def always() -> bool:
    return True


async def never() -> bool:
    return False


async def test_rows_join_between_steps_and_every_clause_is_rendered(engine: GptSovitsEngine) -> None:
    metrics = Metrics()
    scheduler = Scheduler(engine, metrics, max_active=10)
    assert scheduler.continuous
    await scheduler.start()
    try:
        recording, rate = sf.read(SHARED_VOICES / "zh_S0765_enroll.wav", dtype="float32")
        voice = engine.voice_from_recording("acct-zh", recording, rate)
        clauses = [ClauseRequest(text, "zh", voice) for text in ("你好。", "今天天气很好。", "我们去公园吧。")]
        futures = [scheduler.submit(c, deadline=i, wanted=always) for i, c in enumerate(clauses)]
        dropped = scheduler.submit(ClauseRequest("没人要听。", "zh", voice), deadline=9, wanted=never)
        audio = await asyncio.wait_for(asyncio.gather(*futures), 120)
        assert all(a.dtype == np.float32 and a.size > 0 for a in audio)
        with pytest.raises(ClauseDropped):
            await dropped
        samples = {s.name: s.value for s in metrics.batch_size.collect()[0].samples if s.labels.get("le") == "1.0"}
        steps_alone = samples.get("voxroom_synth_batch_size_bucket", 0.0)
        steps_total = next(s.value for s in metrics.batch_size.collect()[0].samples if s.name.endswith("_count"))
        assert steps_total > steps_alone, "never more than one row in a step: no batching happened"
    finally:
        await scheduler.stop()
