"""The fit process loads the fit's models when it starts, so that no voice's CPU budget pays for them."""

from __future__ import annotations

from typing import Any

from synth.enroll.jobs import EnrollmentWorkers


def loaded_in_this_process(job_id: int) -> dict[str, Any]:
    """What the fit reads from its process's caches (runs in the fit process, before any fit)."""
    from synth.enroll import dnsmos, render
    from synth.fit import kokoro_torch, resemblyzer_torch, style_fit

    g2p = style_fit._g2p()
    return {
        "serving engine": render._engine.cache_info().currsize,
        "DNSMOS": dnsmos._session.cache_info().currsize,
        "differentiable graph": kokoro_torch.graph.cache_info().currsize,
        "fitting encoder": resemblyzer_torch._encoder.cache_info().currsize,
        "stock space": style_fit.stock_space.cache_info().currsize,
        "front ends": [g2p._zh is not None, g2p._ja is not None, g2p._en_ready],
    }


async def test_a_new_fit_process_has_loaded_the_fits_models_before_its_first_job() -> None:
    workers = EnrollmentWorkers(niceness=0)  # its own: a shared pool may have fitted a voice already
    try:
        loaded = await workers._submit("fit", loaded_in_this_process, None)
        analysis = await workers._submit("analysis", loaded_in_this_process, None)
    finally:
        workers.close()
    assert loaded == {
        "serving engine": 1, "DNSMOS": 1, "differentiable graph": 1, "fitting encoder": 1, "stock space": 1,
        "front ends": [True, True, True],
    }
    # The analysis process is not the fit's: it stays light.
    assert analysis["differentiable graph"] == 0 and analysis["fitting encoder"] == 0
