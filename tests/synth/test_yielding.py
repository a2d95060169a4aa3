"""A process that follows the server's render count waits while it is above zero, between tensor operations too."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator

import pytest
import torch

from synth import yielding


@pytest.fixture
def count() -> Iterator[yielding.RenderCount]:
    shared = yielding.RenderCount(multiprocessing.get_context("spawn"))
    yielding.follow(shared.shared)
    yield shared
    yielding.follow(None)


def a_gradient_step(done: threading.Event) -> None:
    weights = torch.randn(64, 64, requires_grad=True)
    with yielding.checks_between_operations():
        out = torch.tanh(torch.randn(8, 64) @ weights)
        out.sum().backward()
    done.set()


def test_the_count_is_held_while_rendering_and_released_after_even_on_error(count: yielding.RenderCount) -> None:
    with count.rendering(), count.rendering():
        assert count.value == 2
    with pytest.raises(RuntimeError), count.rendering():
        raise RuntimeError("the engine failed")
    assert count.value == 0


def test_a_gradient_step_waits_while_the_server_renders_and_goes_on_after(count: yielding.RenderCount) -> None:
    done = threading.Event()
    with count.rendering():
        step = threading.Thread(target=a_gradient_step, args=(done,), daemon=True)
        step.start()
        # Milliseconds of work without the count: held for a second, the step has not got through.
        assert not done.wait(1.0)
    assert done.wait(30.0)
    step.join()


def test_without_a_server_to_follow_nothing_waits() -> None:
    yielding.follow(None)
    assert yielding.wait_while_rendering() == 0.0
    done = threading.Event()
    a_gradient_step(done)
    assert done.is_set()


def rendering_for(count: yielding.RenderCount, seconds: float) -> threading.Thread:
    """A render of `seconds` on another thread, under way when this returns."""
    entered = threading.Event()

    def render() -> None:
        with count.rendering():
            entered.set()
            time.sleep(seconds)

    thread = threading.Thread(target=render, daemon=True)
    thread.start()
    entered.wait()
    return thread


def test_a_long_wait_is_told_once_and_a_short_one_not_at_all(count: yielding.RenderCount) -> None:
    told: list[int] = []
    yielding.on_long_wait(lambda: told.append(count.value))
    try:
        rendering_for(count, 0.2)
        assert 0.1 < yielding.wait_while_rendering() < yielding.LONG_WAIT_S
        assert told == []
        rendering_for(count, yielding.LONG_WAIT_S + 0.5)
        assert yielding.wait_while_rendering() >= yielding.LONG_WAIT_S
        assert told == [1] and count.value == 0
    finally:
        yielding.on_long_wait(None)


def test_the_server_sees_how_long_the_fit_has_been_waiting(count: yielding.RenderCount) -> None:
    render = rendering_for(count, 0.8)
    waited: list[float] = []
    waiting = threading.Thread(target=lambda: waited.append(yielding.wait_while_rendering()), daemon=True)
    waiting.start()
    time.sleep(0.4)
    assert 0.2 < count.paused_now_s() < 0.8
    render.join()
    waiting.join()
    assert count.paused_now_s() == 0.0
    assert count.paused_total_s() == pytest.approx(waited[0])
    assert 0.3 < waited[0] < 2.0


def test_the_total_paused_never_goes_down_between_the_fit_process_s_two_writes(count: yielding.RenderCount) -> None:
    from voxroom.metrics import Metrics

    metrics = Metrics()
    metrics.fit_pauses.render_count = count

    def total() -> float:
        return next(
            sample.value
            for family in metrics.fit_pauses.collect()
            for sample in family.samples
            if sample.name == "voxroom_voice_fit_paused_seconds_total"
        )

    # A wait of 2 s under way, then ended as the fit process ends it: the wait cleared, then the total raised.
    count.shared.paused_since.value = time.monotonic() - 2.0
    during = total()
    assert during == pytest.approx(2.0, abs=0.05)
    count.shared.paused_since.value = 0.0
    assert total() == during  # read between the two writes: the last total stands
    count.shared.paused_s.value += 2.0
    assert total() == pytest.approx(2.0, abs=0.05)
