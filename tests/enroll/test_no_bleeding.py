"""Voices rendered together never bleed into each other, as the judge hears it."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
import pytest

from synth.engines.base import ClauseRequest
from synth.engines.kokoro import KokoroEngine
from synth.enroll import judge
from synth.enroll.jobs import EnrollmentWorkers
from synth.enroll.render import stock_packs
from synth.enroll.service import EnrollmentService
from synth.voicestore import VoiceRecord, VoiceStore, load_or_create_deployment_key

# Three owners whose stored voices differ clearly (one male and two female packs).
OWNERS = {"ann": "jf_alpha", "ben": "jm_kumo", "cat": "jf_nezumi"}
TEXT = ("今日は寒いですね。", "ja")


@pytest.mark.slow
async def test_voices_rendered_together_stay_their_own(tmp_path: Path, kokoro: KokoroEngine) -> None:
    store = VoiceStore(tmp_path / "voices", load_or_create_deployment_key(tmp_path))
    for owner, pack in OWNERS.items():
        store.save(VoiceRecord(owner, 1, {"status": "ready"}, {"pack": stock_packs()[pack]}))
    service = EnrollmentService(store, EnrollmentWorkers())  # only reads voices: no process starts
    voices = {owner: await service.voice_for(owner) for owner in OWNERS}

    def judge_print(audio: np.ndarray) -> np.ndarray:
        return judge.embed_speech_of(audio, kokoro.sample_rate)

    alone = {o: judge_print(kokoro.synthesize_batch([ClauseRequest(*TEXT, v)])[0]) for o, v in voices.items()}

    # Interleaved in one batch, and from concurrent threads as the scheduler calls the engine.
    order = list(OWNERS)
    batch = kokoro.synthesize_batch([ClauseRequest(*TEXT, voices[o]) for o in order])
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda o: kokoro.synthesize_batch([ClauseRequest(*TEXT, voices[o])])[0], order))

    for owner, audio in zip(order + order, batch + threaded, strict=True):
        heard = judge_print(audio)
        scores = {other: judge.cosine(heard, reference) for other, reference in alone.items()}
        assert max(scores, key=scores.__getitem__) == owner, scores
        assert scores[owner] > 0.95, scores
    await service.close()
