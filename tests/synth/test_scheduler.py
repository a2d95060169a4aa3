"""The scheduler with a fake engine: batching, deadline order, fairness, cancellation, admission."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from synth.admission import Playback
from synth.engines.base import ClauseRequest
from synth.engines.fake import FakeEngine
from synth.scheduler import ClauseDropped, Scheduler, length_bucket
from synth.text.segment import spoken_seconds
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.metrics import Metrics


async def always() -> bool:
    return True


def clause(engine: FakeEngine, text: str) -> ClauseRequest:
    return ClauseRequest(text=text, lang="en", voice=engine.stock_voice("buzz"))


async def started(engine: FakeEngine, **kwargs: float) -> Scheduler:
    scheduler = Scheduler(engine, Metrics(), **kwargs)  # type: ignore[arg-type]
    await scheduler.start()
    return scheduler


async def test_batches_group_by_length_bucket_and_split_at_max_batch() -> None:
    engine = FakeEngine(max_batch=3, compute_s_per_audio_s=0.0)
    scheduler = await started(engine, max_wait_s=0.05)
    try:
        short = [f"hi {i}" for i in range(4)]  # bucket 0
        long = ["a longer clause number one, with words", "a longer clause number two, with words"]  # bucket 2
        assert {length_bucket(t) for t in short} == {0} and {length_bucket(t) for t in long} == {2}
        futures = [scheduler.submit(clause(engine, t), deadline=i, wanted=always) for i, t in enumerate(short + long)]
        await asyncio.gather(*futures)
        assert sorted(len(call) for call in engine.calls) == [1, 2, 3]
        for call in engine.calls:
            assert len({length_bucket(t) for t in call}) == 1, f"mixed buckets in one batch: {call}"
        assert sum(engine.calls, []) and sorted(sum(engine.calls, [])) == sorted(short + long)
    finally:
        await scheduler.stop()


async def test_engine_that_cannot_batch_gets_one_clause_per_call() -> None:
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.0)
    scheduler = await started(engine)
    try:
        await asyncio.gather(*(scheduler.submit(clause(engine, f"x{i}"), deadline=0, wanted=always) for i in range(5)))
        assert all(len(call) == 1 for call in engine.calls) and len(engine.calls) == 5
    finally:
        await scheduler.stop()


async def test_busy_seconds_count_the_engine_calls_wall_time_and_not_the_idle_time() -> None:
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.5)
    scheduler = await started(engine)
    try:
        began = time.perf_counter()
        outputs = await asyncio.gather(
            *(scheduler.submit(clause(engine, t), deadline=0, wanted=always) for t in ("one clause", "another"))
        )
        await asyncio.sleep(0.3)  # idle: not busy
        wall = time.perf_counter() - began
        busy = scheduler.metrics.engine_busy.labels(engine=engine.name)._value.get()
        slept = sum(0.5 * pcm.size / engine.sample_rate for pcm in outputs)
        assert slept <= busy < wall - 0.25, (slept, busy, wall)
    finally:
        await scheduler.stop()


async def test_retime_keeps_the_audio_heard_apart_from_the_audio_predicted() -> None:
    engine = FakeEngine(max_batch=1)
    scheduler = Scheduler(engine, Metrics())  # not started: the clause stays queued
    playback = Playback(due=0.0)
    continuation = scheduler.submit(
        clause(engine, "and then this"), deadline=5.0, wanted=always, playback=playback, audio_before_s=3.0
    )
    playback.started = 10.0
    scheduler.retime(10.0, 2.0, {continuation: 0.5})  # 2.0 s rendered and out, 0.5 predicted seconds between
    (planned,) = scheduler._queued_plan()
    assert planned.audio_ahead_s(1.2) == pytest.approx(2.0 + 0.5 * 1.2)
    assert planned.order == pytest.approx(
        scheduler.continuation_deadline(10.0, 2.5) - scheduler.cost.predict(spoken_seconds("and then this"))
    )
    continuation.cancel()


async def test_earliest_deadline_first_under_contention() -> None:
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.5)
    scheduler = await started(engine)
    loop = asyncio.get_running_loop()
    try:
        blocker = scheduler.submit(clause(engine, "busy"), deadline=loop.time(), wanted=always)
        await asyncio.sleep(0.05)  # the worker is now busy with "busy"
        now = loop.time()
        # A continuation with audio in hand (due in 5 s) and two new first clauses (due soon).
        later = scheduler.submit(clause(engine, "continuation"), deadline=now + 5, wanted=always)
        first_b = scheduler.submit(clause(engine, "first b"), deadline=now + 0.3, wanted=always)
        first_a = scheduler.submit(clause(engine, "first a"), deadline=now + 0.2, wanted=always)
        await asyncio.gather(blocker, later, first_a, first_b)
        assert [call[0] for call in engine.calls] == ["busy", "first a", "first b", "continuation"]
    finally:
        await scheduler.stop()


async def test_unwanted_clause_is_dropped_before_compute() -> None:
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.0)
    scheduler = await started(engine)
    wanted = True

    async def check() -> bool:
        return wanted

    try:
        wanted = False
        doomed = scheduler.submit(clause(engine, "never spoken"), deadline=0, wanted=check)
        with pytest.raises(ClauseDropped):
            await doomed
        assert engine.calls == []
        wanted = True
        await scheduler.submit(clause(engine, "spoken"), deadline=0, wanted=check)
        assert engine.calls == [["spoken"]]
    finally:
        await scheduler.stop()


async def test_admission_refuses_with_overloaded_and_releases() -> None:
    scheduler = Scheduler(FakeEngine(), Metrics(), max_active=2)
    scheduler.admit("a")
    scheduler.admit("b")
    with pytest.raises(VoxroomError) as refused:
        scheduler.admit("c")
    assert refused.value.code is ErrorCode.OVERLOADED
    scheduler.release("a")
    scheduler.admit("c")
    assert scheduler.active == 2


async def test_a_chatty_sender_waits_behind_others() -> None:
    scheduler = Scheduler(FakeEngine(), Metrics(), max_active=10, first_clause_target_s=0.2, fairness_step_s=1.0)
    for _ in range(3):
        scheduler.admit("chatty")
    scheduler.admit("quiet")
    assert scheduler.first_clause_deadline(100.0, "quiet") == pytest.approx(100.2)
    assert scheduler.first_clause_deadline(100.0, "chatty") == pytest.approx(102.2)


class TwoPieceEngine(FakeEngine):
    """Streams each clause in two halves, the second `gap_s` after the first (as Kokoro's decoder does)."""

    def __init__(self, gap_s: float) -> None:
        super().__init__(compute_s_per_audio_s=0.0)
        self.gap_s = gap_s

    def stream_clause(self, clause: ClauseRequest):  # type: ignore[no-untyped-def]
        audio = self.render(clause)
        yield audio[: audio.size // 2]
        time.sleep(self.gap_s)
        yield audio[audio.size // 2 :]


async def test_a_streamed_clause_hands_over_its_first_piece_before_the_rest_is_rendered() -> None:
    engine = TwoPieceEngine(gap_s=0.3)
    scheduler = await started(engine)
    try:
        pieces: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        future = scheduler.submit(clause(engine, "a clause long enough to stream"), deadline=0, wanted=always,
                                  pieces=pieces)
        first = await asyncio.wait_for(pieces.get(), 5)
        first_at = loop.time()
        assert not future.done()  # the rest is still being rendered
        whole = await future
        assert loop.time() - first_at >= 0.25
        second = pieces.get_nowait()  # queued before the future resolved
        np.testing.assert_array_equal(np.concatenate([first, second]), whole)
        np.testing.assert_array_equal(whole, engine.render(clause(engine, "a clause long enough to stream")))
    finally:
        await scheduler.stop()


class TimedTwoPieceEngine(TwoPieceEngine):
    """Also notes when each first piece is handed over and when each whole-clause call starts."""

    def __init__(self, gap_s: float) -> None:
        super().__init__(gap_s)
        self.first_piece_at: list[float] = []
        self.call_started_at: list[float] = []

    def stream_clause(self, clause: ClauseRequest):  # type: ignore[no-untyped-def]
        time.sleep(self.gap_s)  # the first piece takes a while too
        pieces = super().stream_clause(clause)
        self.first_piece_at.append(time.perf_counter())
        yield next(pieces)
        yield from pieces

    def synthesize_batch(self, clauses):  # type: ignore[no-untyped-def]
        self.call_started_at.append(time.perf_counter())
        return super().synthesize_batch(clauses)


async def test_a_second_worker_renders_ahead_of_time_only_once_the_first_piece_is_out() -> None:
    engine = TimedTwoPieceEngine(gap_s=0.4)
    scheduler = await started(engine, workers=2, max_first_audio_s=0.0)
    try:
        now = asyncio.get_running_loop().time()
        pieces: asyncio.Queue = asyncio.Queue()
        first = scheduler.submit(clause(engine, "the first clause of a message"), deadline=now, wanted=always,
                                 pieces=pieces)
        # A continuation due in 30 s: worth rendering ahead of time, but not beside the first piece.
        later = scheduler.submit(clause(engine, "its continuation"), deadline=now + 30, wanted=always,
                                 audio_before_s=2.0)
        await asyncio.wait_for(asyncio.gather(first, later), 10)
        assert len(engine.first_piece_at) == 1 and len(engine.call_started_at) == 1
        waited = engine.call_started_at[0] - engine.first_piece_at[0]
        assert 0 <= waited < 0.3  # after the first piece, and at once (not when it was due)
        # With no first piece being rendered, the same continuation starts at once.
        began = time.perf_counter()
        await asyncio.wait_for(
            scheduler.submit(clause(engine, "its continuation"), deadline=now + 30, wanted=always, audio_before_s=2.0),
            10,
        )
        assert engine.call_started_at[1] - began < 0.3
    finally:
        await scheduler.stop()


async def test_speaker_sends_the_first_piece_before_the_clause_is_done_and_loses_nothing() -> None:
    from synth.speech import Speaker, plan_clauses

    engine = TwoPieceEngine(gap_s=0.4)
    scheduler = await started(engine, max_first_audio_s=0.0)
    try:
        speaker = Speaker(engine, scheduler)
        clauses = plan_clauses("Good morning, everyone in the room today.")
        loop = asyncio.get_running_loop()
        arrivals = []
        async for _packet in speaker.packets(clauses, engine.stock_voice("buzz"), always, sender="s"):
            arrivals.append(loop.time())
        expected_audio = sum(engine.render(ClauseRequest(c.text, c.lang, engine.stock_voice("buzz"))).size
                             for c in clauses) / engine.sample_rate
        pauses = sum(c.pause_after_s for c in clauses[:-1])
        assert abs(len(arrivals) * 0.02 - (expected_audio + pauses)) < 0.05  # every sample was encoded
        assert arrivals[-1] - arrivals[0] >= 0.35  # the first packets left before the first clause was done
    finally:
        await scheduler.stop()


async def test_each_piece_sends_its_first_packets_before_the_rest_of_it_is_encoded() -> None:
    from synth.speech import FIRST_SEND_S, Speaker, plan_clauses

    engine = TwoPieceEngine(gap_s=0.05)  # one clause of about 0.9 s, streamed in two halves
    scheduler = await started(engine, max_first_audio_s=0.0)
    filtered: list[tuple[int, float]] = []  # (samples, when the filter started on them)

    def slow_filter(pcm: np.ndarray, rate: int) -> np.ndarray:  # costs like the watermark: more audio, more time
        filtered.append((pcm.size, time.perf_counter()))
        time.sleep(0.3 * pcm.size / rate)
        return pcm

    try:
        speaker = Speaker(engine, scheduler, chunk_filter=slow_filter)
        clauses = plan_clauses("hello there")
        voice = engine.stock_voice("buzz")
        arrivals = []
        async for _packet in speaker.packets(clauses, voice, always, sender="s"):
            arrivals.append(time.perf_counter())
        whole = engine.render(ClauseRequest(clauses[0].text, clauses[0].lang, voice)).size
        head, halves = int(FIRST_SEND_S * engine.sample_rate), [whole // 2, whole - whole // 2]
        assert [size for size, _ in filtered] == [head, halves[0] - head, head, halves[1] - head]
        assert abs(len(arrivals) * 0.02 - whole / engine.sample_rate) < 0.05  # every sample was encoded
        # A piece's first packets left before the filter started on the rest of that piece.
        assert arrivals[0] < filtered[1][1]
        second_piece_first_packet = next(t for t in arrivals if t > filtered[2][1])
        assert second_piece_first_packet < filtered[3][1]
        assert scheduler.metrics.stream_underruns._value.get() == 0  # type: ignore[attr-defined]
    finally:
        await scheduler.stop()


@pytest.mark.parametrize(("gap_s", "underruns"), [(0.05, 0), (0.9, 1)])
async def test_a_piece_that_leaves_after_its_place_in_the_stream_counts_as_a_gap(gap_s: float, underruns: int) -> None:
    from synth.speech import Speaker, plan_clauses

    engine = TwoPieceEngine(gap_s=gap_s)  # one clause of ~0.9 s in two halves: the second `gap_s` after the first
    scheduler = await started(engine, max_first_audio_s=0.0)
    try:
        speaker = Speaker(engine, scheduler)
        async for _packet in speaker.packets(plan_clauses("hi there you"), engine.stock_voice("buzz"), always,
                                             sender="s"):
            pass
        metrics = scheduler.metrics
        assert metrics.stream_underruns._value.get() == underruns  # type: ignore[attr-defined]
        # The second half (at ~0.48 s in the stream) left gap_s after the first: -0.43 s ahead, or 0.42 s late.
        low, high = (-0.5, -0.2) if underruns == 0 else (0.2, 0.5)

        def at_most(bound: float) -> float | None:
            return metrics.registry.get_sample_value(
                "voxroom_stream_worst_lateness_seconds_bucket", {"le": str(bound)}
            )

        assert (at_most(low), at_most(high)) == (0.0, 1.0)
    finally:
        await scheduler.stop()


async def test_hold_waits_for_the_continuation_but_never_past_the_first_audio_deadline() -> None:
    from synth.admission import Playback, RenderCostModel

    metrics = Metrics()
    scheduler = Scheduler(FakeEngine(), metrics)  # not started: what is queued stays queued
    scheduler.cost = RenderCostModel(call_s=2.0, per_audio_s=0.0)  # every clause is predicted to take 2 s
    engine = FakeEngine()
    now = asyncio.get_running_loop().time()

    def playback_with_continuation(due_in_s: float) -> Playback:
        playback = Playback(due=now + due_in_s)
        # A continuation after 0.5 s of audio, counted with its cushion: ready 2.6 s from now, so the first audio
        # should start 2.1 s from now (less the lateness a jitter buffer hides).
        scheduler.submit(
            clause(engine, "and the rest of it"), deadline=now + 0.5, wanted=always, playback=playback,
            audio_before_s=0.5, speech_s=0.5,
        )
        return playback

    from synth.scheduler import CONTINUATION_COST_CUSHION, LATENESS_TOLERANCE_S

    roomy = scheduler.hold(playback_with_continuation(5.0))
    assert roomy == pytest.approx(2.0 * CONTINUATION_COST_CUSHION - 0.5 - LATENESS_TOLERANCE_S, abs=0.05)
    assert roomy > 2.0 - 0.5  # the cushion holds it longer than the bare prediction would
    assert metrics.hold_capped._value.get() == 0
    # The deadline comes first: the first audio goes out at it (and the stream will likely gap), counted.
    tight = scheduler.hold(playback_with_continuation(0.5))
    assert tight == pytest.approx(0.5, abs=0.05)
    assert metrics.hold_capped._value.get() == 1
    # First audio already past its deadline with nothing to wait for is late, not cut short: not counted.
    assert scheduler.hold(Playback(due=now - 1.0)) == 0.0
    assert metrics.hold_capped._value.get() == 1


class WholeOrPiecesEngine(FakeEngine):
    """Renders a clause whole in `whole_s`, or streams it: its first half after `piece_s`, the rest `rest_s` later
    (as Kokoro's two decoder windows). Notes which way each clause was rendered."""

    def __init__(self, *, whole_s: float, piece_s: float, rest_s: float = 0.05, streams: bool) -> None:
        super().__init__(compute_s_per_audio_s=0.0)
        self.whole_s, self.piece_s, self.rest_s = whole_s, piece_s, rest_s
        self.streams_within_clause = streams
        self.rendered_whole: list[str] = []
        self.streamed: list[str] = []

    def synthesize_batch(self, clauses):  # type: ignore[no-untyped-def]
        self.rendered_whole += [c.text for c in clauses]
        time.sleep(self.whole_s)
        return [self.render(c) for c in clauses]

    def stream_clause(self, clause: ClauseRequest):  # type: ignore[no-untyped-def]
        self.streamed.append(clause.text)
        audio = self.render(clause)
        time.sleep(self.piece_s)
        yield audio[: audio.size // 2]
        time.sleep(self.rest_s)
        yield audio[audio.size // 2 :]


@pytest.mark.parametrize("streams", [True, False])
async def test_a_continuation_that_would_run_dry_rendered_whole_is_streamed_and_one_on_time_is_not(
    streams: bool,
) -> None:
    from synth.admission import RenderCostModel

    engine = WholeOrPiecesEngine(whole_s=0.2, piece_s=0.05, streams=streams)
    scheduler = await started(engine)
    scheduler.cost = RenderCostModel(call_s=1.0, per_audio_s=0.0)  # a continuation is predicted to take 1 s whole
    try:
        now = asyncio.get_running_loop().time()
        playback = Playback(due=now)
        playback.started = now  # playing: the audio ahead of a continuation runs out at a known time
        soon_pieces: asyncio.Queue = asyncio.Queue()
        later_pieces: asyncio.Queue = asyncio.Queue()
        # Its audio ahead runs out 0.5 s from now, before a 1 s render could end; the other's in 10 s.
        soon = scheduler.submit(clause(engine, "needed soon"), deadline=now, wanted=always, playback=playback,
                                audio_before_s=0.5, pieces=soon_pieces)
        later = scheduler.submit(clause(engine, "needed later"), deadline=now + 10, wanted=always,
                                 playback=playback, audio_before_s=10.0, pieces=later_pieces)
        soon_audio, later_audio = await asyncio.wait_for(asyncio.gather(soon, later), 10)
        streamed = scheduler.metrics.continuations_streamed._value.get()  # type: ignore[attr-defined]
        if streams:  # the late one in two pieces, the other whole; both handed over in full
            assert (engine.streamed, engine.rendered_whole, streamed) == (["needed soon"], ["needed later"], 1)
            assert soon_pieces.qsize() == 2
        else:  # an engine that cannot stream inside a clause gains nothing from it: both whole
            assert (engine.streamed, engine.rendered_whole, streamed) == ([], ["needed soon", "needed later"], 0)
            assert soon_pieces.qsize() == 1
        handed_over = [soon_pieces.get_nowait() for _ in range(soon_pieces.qsize())]
        np.testing.assert_array_equal(np.concatenate(handed_over), soon_audio)
        np.testing.assert_array_equal(soon_audio, engine.render(clause(engine, "needed soon")))
        assert later_pieces.qsize() == 1
        np.testing.assert_array_equal(later_pieces.get_nowait(), later_audio)
    finally:
        await scheduler.stop()


@pytest.mark.parametrize(("streams", "underruns"), [(True, 0), (False, 1)])
async def test_a_stream_whose_continuation_renders_slowly_plays_on_when_the_engine_can_stream_it(
    streams: bool, underruns: int
) -> None:
    from synth.admission import RenderCostModel
    from synth.speech import Speaker, plan_clauses

    # Each clause streams in 0.5 s, its first half out after 0.05 s, or renders whole in 1.5 s (predicted: 0.5 s).
    # The first clause's second half (0.35 s of audio) is then 0.1 s late at most, inside the listener's buffer
    # (0.2 s: with 0.55 s for the rest it was 0.2 s late plus the threads' own delays, and failed on some CPUs).
    # The second clause is taken once the first (0.7 s of audio) is rendered: rendered whole from then, it would
    # be heard about 1 s late; streamed, its first piece is out in time. The third has the second's 2.2 s of audio
    # ahead of it: time enough to render it whole.
    engine = WholeOrPiecesEngine(whole_s=1.5, piece_s=0.05, rest_s=0.45, streams=streams)
    scheduler = await started(engine, max_first_audio_s=0.0)
    scheduler.cost = RenderCostModel(call_s=0.5, per_audio_s=0.0)
    try:
        speaker = Speaker(engine, scheduler)
        clauses = plan_clauses("Hi there, and this is the rest of what I wanted.")
        assert len(clauses) == 3
        packets = 0
        async for _packet in speaker.packets(clauses, engine.stock_voice("buzz"), always, sender="s"):
            packets += 1
        voice = engine.stock_voice("buzz")
        audio_s = sum(engine.render(ClauseRequest(c.text, c.lang, voice)).size for c in clauses) / engine.sample_rate
        pauses = sum(c.pause_after_s for c in clauses[:-1])
        assert abs(packets * 0.02 - (audio_s + pauses)) < 0.05  # nothing lost either way
        metrics = scheduler.metrics
        assert metrics.stream_underruns._value.get() == underruns  # type: ignore[attr-defined]
        assert metrics.continuations_streamed._value.get() == (1 if streams else 0)  # type: ignore[attr-defined]
        assert engine.streamed[1:] == ([clauses[1].text] if streams else [])
    finally:
        await scheduler.stop()


async def test_the_render_count_is_held_while_the_engine_renders_and_only_then() -> None:
    import multiprocessing

    from synth.yielding import RenderCount

    count = RenderCount(multiprocessing.get_context("spawn"))
    seen: list[int] = []

    class Watched(FakeEngine):
        def synthesize_batch(self, clauses):  # type: ignore[no-untyped-def]
            seen.append(count.value)
            return super().synthesize_batch(clauses)

    engine = Watched(max_batch=1, compute_s_per_audio_s=0.1)
    scheduler = Scheduler(engine, Metrics(), workers=2, render_count=count)
    await scheduler.start()
    try:
        assert count.value == 0
        await asyncio.gather(*(scheduler.submit(clause(engine, f"clause {i}"), deadline=0, wanted=always)
                               for i in range(4)))
        assert len(seen) == 4 and all(1 <= value <= 2 for value in seen), seen
        assert count.value == 0
    finally:
        await scheduler.stop()
