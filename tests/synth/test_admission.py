"""Admission by predicted compute: the cost model, the queue replay, and the scheduler refusing what would be late."""

from __future__ import annotations

import asyncio
import time

import pytest

from synth.admission import PlannedClause, Playback, QueueReplay, RenderCostModel
from synth.engines.base import ClauseRequest
from synth.engines.fake import FakeEngine
from synth.scheduler import ClauseTiming, Scheduler
from synth.speech import clause_timings, plan_clauses
from synth.text.segment import spoken_seconds
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.metrics import Metrics


def test_cost_model_learns_per_call_and_per_second_costs() -> None:
    model = RenderCostModel(call_s=1.0, per_audio_s=1.0)
    for speech in [0.5, 1.0, 2.0, 3.0] * 5:
        model.observe(speech, 0.2 + 0.4 * speech)
    assert model.call_s == pytest.approx(0.2, abs=1e-6)
    assert model.per_audio_s == pytest.approx(0.4, abs=1e-6)
    assert model.predict(2.5) == pytest.approx(1.2, abs=1e-6)


def test_cost_model_follows_a_slower_machine() -> None:
    model = RenderCostModel()
    for speech in [0.5, 1.5] * 10:
        model.observe(speech, 0.1 + 0.5 * speech)
    for speech in [0.5, 1.5] * 40:  # the machine gets busy: twice as slow
        model.observe(speech, 0.2 + 1.0 * speech)
    assert model.predict(1.0) == pytest.approx(1.2, rel=0.05)


def test_a_seeded_cost_model_fits_from_its_first_calls() -> None:
    model = RenderCostModel()  # the defaults: another machine's figures
    model.seed([(0.4, 0.9), (1.6, 2.1)])  # this one: 0.5 s per call + 1 s per second of speech
    assert model.call_s == pytest.approx(0.5, abs=1e-6) and model.per_audio_s == pytest.approx(1.0, abs=1e-6)
    model.observe(1.0, 1.5)  # and it goes on learning from real calls at once
    assert model.predict(1.0) == pytest.approx(1.5, abs=1e-6)


async def test_calibration_measures_the_engine_before_anything_is_admitted() -> None:
    engine = FakeEngine(compute_s_per_audio_s=0.5, batch_overhead_s=0.1)
    scheduler = Scheduler(engine, Metrics())
    voice = engine.stock_voice("buzz")
    texts = ["好的", "今天的会议改到下午三点", "我觉得这个方案还需要再讨论一下"]
    await scheduler.calibrate([ClauseRequest(text=t, lang="zh", voice=voice) for t in texts[:2]])
    assert engine.calls == [[texts[0]], [texts[1]]]
    # A clause it has not rendered is predicted from what was measured (the defaults would say 1.8 s).
    audio_s = engine.render(ClauseRequest(text=texts[2], lang="zh", voice=voice)).size / engine.sample_rate
    actual = 0.1 + 0.5 * audio_s
    assert scheduler.cost.predict(spoken_seconds(texts[2])) == pytest.approx(actual, rel=0.1)
    assert scheduler.audio_length.ratio == pytest.approx(0.4, rel=0.1)  # 80 ms of buzz per 200 ms predicted
    await scheduler.stop()


@pytest.mark.parametrize("compute_s_per_audio_s", [0.3, 1.6])
async def test_calibration_reports_a_machine_slower_than_real_time(
    compute_s_per_audio_s: float, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(compute_s_per_audio_s=compute_s_per_audio_s, batch_overhead_s=0.02)
    metrics = Metrics()
    scheduler = Scheduler(engine, metrics)
    voice = engine.stock_voice("buzz")
    clauses = [ClauseRequest(text=t, lang="zh", voice=voice) for t in ("好的", "今天的会议改到下午三点")]
    with caplog.at_level("INFO", logger="synth.scheduler"):
        await scheduler.calibrate(clauses)
    await scheduler.stop()
    gauge = metrics.registry.get_sample_value("voxroom_engine_calibrated_real_time_factor", {"engine": engine.name})
    # 2 s of speech is 0.8 s of buzz: the per-call overhead spread over it adds about 0.02 / 0.8.
    assert gauge == pytest.approx(compute_s_per_audio_s + 0.025, rel=0.15)
    slow = [r for r in caplog.records if r.levelname == "WARNING" and "slower than real time" in r.getMessage()]
    assert len(slow) == (1 if compute_s_per_audio_s > 1 else 0)


class StreamingCostsMore(FakeEngine):
    """A first clause heard in pieces costs this much more than the same clause rendered whole (as Kokoro's two
    overlapping decoder windows do)."""

    STREAM_EXTRA_S = 0.1

    def stream_clause(self, clause: ClauseRequest):  # type: ignore[no-untyped-def]
        time.sleep(self.STREAM_EXTRA_S)
        yield from super().stream_clause(clause)


async def test_streamed_first_clauses_and_whole_clauses_are_costed_apart() -> None:
    engine = StreamingCostsMore(compute_s_per_audio_s=0.1, batch_overhead_s=0.05)
    scheduler = Scheduler(engine, Metrics())
    await scheduler.start()
    voice = engine.stock_voice("buzz")
    texts = ["ok then", "see you soon", "that works for me", "let us meet at the station", "fine"] * 2
    loop = asyncio.get_running_loop()
    for text in texts:  # each rendered once streamed, as a first clause, and once whole, as a continuation
        request = ClauseRequest(text=text, lang="en", voice=voice)
        pieces: asyncio.Queue = asyncio.Queue()
        await scheduler.submit(request, deadline=loop.time(), wanted=always, pieces=pieces)
        await scheduler.submit(request, deadline=loop.time(), wanted=always, audio_before_s=1.0)
    await scheduler.stop()
    # Every call's misprediction is in /metrics, by kind: one on call sees which way admission errs.
    registry = scheduler.metrics.registry
    for kind in ("streamed", "whole"):
        count = registry.get_sample_value("voxroom_synth_render_misprediction_seconds_count", {"kind": kind})
        assert count == len(texts)
    speech_s = spoken_seconds("see you at six")
    whole = 0.05 + 0.1 * engine.render(ClauseRequest("see you at six", "en", voice)).size / engine.sample_rate
    assert scheduler.cost.predict(speech_s) == pytest.approx(whole, abs=0.02)
    streamed = whole + StreamingCostsMore.STREAM_EXTRA_S
    assert scheduler.streamed_cost.predict(speech_s) == pytest.approx(streamed, abs=0.02)
    # Admission plans a message's first clause at the streamed cost and its continuations at the whole one, with
    # the continuation's cushion against calls running long; the order of work uses the bare prediction.
    from synth.scheduler import CONTINUATION_COST_CUSHION

    planned = scheduler._planned(Playback(due=loop.time() + 2), [ClauseTiming(1.0, 0.0), ClauseTiming(1.0, 1.0)], 0.0)
    assert [p.cost_s for p in planned] == pytest.approx(
        [scheduler.streamed_cost.predict(1.0), scheduler.cost.predict(1.0) * CONTINUATION_COST_CUSHION]
    )
    assert scheduler.streamed_cost.predict(1.0) > scheduler.cost.predict(1.0)
    continuation_due = scheduler.continuation_deadline(0.0, 1.0)
    assert planned[1].order == pytest.approx(continuation_due - scheduler.cost.predict(1.0))


def clause(order: float, cost: float, playback: Playback, audio_before: float = 0.0) -> PlannedClause:
    return PlannedClause(order, cost, playback, audio_before == 0.0, audio_before)


def test_replay_finds_a_continuation_that_would_run_dry() -> None:
    playing, waiting = Playback(due=1.0), Playback(due=1.0)
    playing.started = 0.0  # its first clause is out: 1.0 s of audio ahead of its continuation
    queue = [
        clause(0.1, 0.5, waiting),  # a new message's first clause, done at 0.5
        clause(0.2, 1.0, playing, audio_before=1.0),  # done at 1.5, but the audio ran out at 1.0
    ]
    late = QueueReplay(now=0.0, workers=1).lateness(queue)
    assert late == pytest.approx([-0.5, 0.5])
    # Two workers render both in time.
    assert max(QueueReplay(now=0.0, workers=2).lateness(queue)) <= 0


def test_a_busy_worker_delays_everything_queued() -> None:
    a = Playback(due=1.0)
    busy = QueueReplay(now=0.0, workers=1, workers_free_at=(0.8,))
    assert busy.lateness([clause(0.0, 0.5, a)]) == pytest.approx([0.3])


def test_an_utterance_starts_once_its_continuations_will_be_in_time() -> None:
    new = Playback(due=2.0)
    queue = [clause(0.0, 0.5, new), clause(0.1, 1.5, new, audio_before=0.7)]  # a short clause, then a long one
    # The second clause is done at 2.0; started at 1.3, the 0.7 s ahead of it runs out just then.
    assert QueueReplay(now=0.0, workers=1, audio_per_speech=1.0, tolerance_s=0.0).start_time(new, queue) == (
        pytest.approx(1.3)
    )
    assert QueueReplay(now=0.0, workers=1, audio_per_speech=1.0, tolerance_s=0.2).start_time(new, queue) == (
        pytest.approx(1.1)
    )
    # Audio runs longer than its text predicts: less hold is needed.
    assert QueueReplay(now=0.0, workers=1, audio_per_speech=2.0, tolerance_s=0.0).start_time(new, queue) == (
        pytest.approx(0.6)
    )
    assert QueueReplay(now=0.0, workers=1).lateness(queue) == pytest.approx([1.3 - 2.0, 0.0])


def test_a_streamed_first_clause_is_heard_once_its_first_piece_is_out() -> None:
    busy = Playback(due=0.3)
    whole = [clause(0.0, 1.0, busy)]  # heard when the whole clause is rendered: 0.7 s past its due time
    assert QueueReplay(now=0.0, workers=1).lateness(whole) == pytest.approx([0.7])
    streamed = [PlannedClause(0.0, 1.0, busy, True, 0.0, first_audio_s=0.2)]
    assert QueueReplay(now=0.0, workers=1).lateness(streamed) == pytest.approx([-0.1])
    # Behind a worker busy until 0.5 it starts at 0.5 and is heard at 0.7.
    replay = QueueReplay(now=0.0, workers=1, workers_free_at=(0.5,))
    assert replay.lateness(streamed) == pytest.approx([0.4])


def test_audio_already_rendered_is_not_scaled_like_predicted_audio() -> None:
    playing = Playback(due=1.0)
    playing.started = 0.0
    replay = QueueReplay(now=0.0, workers=1, audio_per_speech=1.2)
    # 2.0 s of audio rendered and heard: a continuation done at 2.2 s leaves the stream dry for 0.2 s.
    heard = PlannedClause(0.0, 2.2, playing, False, 0.0, heard_before_s=2.0)
    assert replay.lateness([heard]) == pytest.approx([0.2])
    # 2.0 predicted seconds of speech are 2.4 s of audio: the same continuation has 0.2 s to spare.
    predicted = PlannedClause(0.0, 2.2, playing, False, 2.0)
    assert replay.lateness([predicted]) == pytest.approx([-0.2])


def test_added_lateness_blames_the_newcomer_only_for_what_it_causes() -> None:
    # Playing: a paragraph whose next clause is late even alone (a long clause after a short one).
    old = Playback(due=1.0)
    old.started = 0.0
    queued = [clause(0.5, 3.0, old, audio_before=0.5)]
    assert QueueReplay(now=0.0, workers=1).lateness(queued) == pytest.approx([2.5])
    # A short newcomer due later than everything queued changes nothing: admitted.
    later = Playback(due=10.0)
    assert QueueReplay(now=0.0, workers=1).added_lateness(queued, [clause(5.0, 0.2, later)]) <= 0
    # One that goes ahead of the paragraph's clause makes the stream run dry 0.5 s longer: refused.
    urgent = Playback(due=1.0)
    assert QueueReplay(now=0.0, workers=1).added_lateness(queued, [clause(-1.0, 0.5, urgent)]) == (
        pytest.approx(0.5)
    )
    # The log says whose clause it is: the playing stream's continuation, not the newcomer's first audio.
    blame = QueueReplay(now=0.0, workers=1).worst_added(queued, [clause(-1.0, 0.5, urgent)])
    assert blame.lateness_s == pytest.approx(0.5) and str(blame) == "a continuation queued"
    # Behind another message's long first clause, it is the newcomer's own first audio that would be late.
    long_first = [clause(0.0, 2.0, Playback(due=5.0))]
    blame = QueueReplay(now=0.0, workers=1).worst_added(long_first, [clause(0.5, 0.2, Playback(due=1.0))])
    assert blame.lateness_s == pytest.approx(1.2) and str(blame) == "its first audio"
    # Within the tolerance it is admitted.
    assert QueueReplay(now=0.0, workers=1, tolerance_s=3.0).added_lateness(queued, [clause(-1.0, 0.5, urgent)]) <= 0
    # A lone newcomer too long to be on time even on an idle engine is not refused for that.
    slow = Playback(due=0.5)
    assert QueueReplay(now=0.0, workers=1).added_lateness([], [clause(0.0, 2.0, slow)]) <= 0


def long_message_timings() -> list[ClauseTiming]:
    text = "This message is long enough to keep the engine busy, and it goes on for a while, clause after clause."
    return clause_timings(plan_clauses(text, "en"))


async def test_scheduler_refuses_what_it_cannot_render_in_time_and_admits_again_when_idle() -> None:
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.0)
    scheduler = Scheduler(engine, Metrics(), max_active=100, max_first_audio_s=1.2)
    timings = long_message_timings()
    assert len(timings) > 2
    admitted, refused = [], 0
    for index in range(12):
        try:
            playback = scheduler.admit(f"sender-{index}", timings)
        except VoxroomError as error:
            assert error.code == ErrorCode.OVERLOADED and "late" in error.message
            assert error.retry_after_s is not None and error.retry_after_s >= 0.5
            refused += 1
            continue
        admitted.append(playback)
        # Queue its clauses as the speaker would (without a worker running, they stay queued).
        now = asyncio.get_running_loop().time()
        first = playback.first_deadline if playback.first_deadline is not None else (
            scheduler.first_clause_deadline(now, f"sender-{index}")
        )
        for number, timing in enumerate(timings):
            deadline = scheduler.continuation_deadline(first, timing.audio_before_s) if number else first
            scheduler.submit(
                engine_clause(engine), deadline=deadline, wanted=always, playback=playback,
                audio_before_s=timing.audio_before_s,
            )
    assert 1 <= len(admitted) < 12 and refused == 12 - len(admitted)
    # Cached audio needs no engine time: admitted whatever the queue holds.
    scheduler.admit("cached", None)
    await scheduler.stop()  # drops the queue
    scheduler.admit("after", timings)


async def test_a_newcomer_that_would_starve_a_playing_stream_waits_its_turn_instead_of_being_refused() -> None:
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.0)
    scheduler = Scheduler(engine, Metrics(), max_active=100, max_first_audio_s=1.2)  # not started: all stays queued
    scheduler.cost = RenderCostModel(call_s=0.1, per_audio_s=0.3)
    scheduler.streamed_cost = RenderCostModel(call_s=0.1, per_audio_s=0.3)
    now = asyncio.get_running_loop().time()
    # A stream playing since now with 0.7 s of audio out; its next clause takes 0.4 s to render.
    playing = scheduler.admit("talker", None)
    continuation = scheduler.submit(
        engine_clause(engine), deadline=now, wanted=always, playback=playing, audio_before_s=1.0, speech_s=1.0
    )
    playing.started = now
    scheduler.retime(now, 0.7, {continuation: 0.0})
    # A newcomer whose first clause (0.7 s) would go first and leave the stream dry for 0.4 s, more than the
    # jitter buffer hides: it is admitted behind the continuation, still heard well within its deadline.
    timings = [ClauseTiming(speech_s=2.0, audio_before_s=0.0)]
    assert scheduler._replay(now).worst_added(
        scheduler._queued_plan(), scheduler._planned(Playback(due=now + 2), timings, now + 0.25)
    ).lateness_s > 0
    newcomer = scheduler.admit("newcomer", timings)
    assert newcomer.first_deadline is not None and newcomer.first_deadline > now + 0.25
    assert scheduler.metrics.admitted_behind._value.get() == 1
    scheduler.submit(
        engine_clause(engine), deadline=newcomer.first_deadline, wanted=always, playback=newcomer, speech_s=2.0
    )
    assert scheduler._heap[0].future is continuation  # rendered first
    # Its first audio is still predicted on time.
    assert max(scheduler._replay(now).lateness(scheduler._queued_plan())) <= 0
    await scheduler.stop()


async def test_a_burst_admitted_before_its_clauses_are_queued_still_counts() -> None:
    # Messages arriving together are admitted one after another, each before the policy check and the queueing
    # of its clauses: nothing is queued yet when the next one is admitted. The admitted ones must count.
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.0)
    scheduler = Scheduler(engine, Metrics(), max_active=100, max_first_audio_s=1.2)
    timings = long_message_timings()
    admitted = []
    for index in range(12):
        try:
            admitted.append(scheduler.admit(f"sender-{index}", timings))
        except VoxroomError as error:
            assert error.code == ErrorCode.OVERLOADED
    assert 1 <= len(admitted) < 12
    # A message refused by the policy after admission frees its reservation: the next one fits again.
    for index, playback in enumerate(admitted):
        scheduler.release(f"sender-{index}", playback)
    assert scheduler.admit("after-release", timings)
    await scheduler.stop()


async def always() -> bool:
    return True


def engine_clause(engine: FakeEngine):  # type: ignore[no-untyped-def]
    from synth.engines.base import ClauseRequest

    return ClauseRequest(text="a clause of several words, more or less", lang="en", voice=engine.stock_voice("buzz"))


async def test_zero_max_first_audio_turns_the_compute_check_off() -> None:
    engine = FakeEngine(max_batch=1, compute_s_per_audio_s=0.0)
    scheduler = Scheduler(engine, Metrics(), max_active=5, max_first_audio_s=0.0)
    timings = long_message_timings()
    for index in range(5):
        scheduler.admit(f"s{index}", timings)
    with pytest.raises(VoxroomError):
        scheduler.admit("s5", timings)  # max_active still holds
