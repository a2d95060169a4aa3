"""Settings from the environment: auto/on/off switches are read once, and a bad value stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxroom.app import engine_options
from voxroom.settings import load_settings


@pytest.mark.parametrize(("value", "expected"), [("auto", None), ("On", True), ("off", False)])
def test_the_engine_gets_the_int8_gemm_switch_as_none_true_or_false(
    tmp_path: Path, value: str, expected: bool | None
) -> None:
    settings = load_settings(None, {"VOXROOM_DATA_DIR": str(tmp_path), "VOXROOM_ENGINE_INT8_GEMM": value})
    assert engine_options(settings)["int8_gemm"] is expected


@pytest.mark.parametrize("variable", ["VOXROOM_ENGINE_INT8_GEMM", "VOXROOM_GPTSOVITS_BERT"])
def test_a_switch_that_is_not_auto_on_or_off_stops_start_up_saying_so(tmp_path: Path, variable: str) -> None:
    with pytest.raises(SystemExit, match=f"{variable}: expected auto, on or off, got 'maybe'"):
        load_settings(None, {"VOXROOM_DATA_DIR": str(tmp_path), variable: "maybe"})


@pytest.mark.parametrize(("workers", "narrow"), [("1", False), ("2", True)])
def test_several_workers_share_the_cores_through_the_engines_one_thread_copy(
    tmp_path: Path, workers: str, narrow: bool
) -> None:
    settings = load_settings(None, {"VOXROOM_DATA_DIR": str(tmp_path), "VOXROOM_ENGINE_WORKERS": workers})
    assert engine_options(settings)["narrow_when_shared"] is narrow


@pytest.mark.parametrize("variable", ["VOXROOM_VOICE_KEY", "VOXROOM_SECRET_KEY"])
def test_the_deployment_key_answers_to_both_its_names(tmp_path: Path, variable: str) -> None:
    key = "ab" * 32
    settings = load_settings(None, {"VOXROOM_DATA_DIR": str(tmp_path), variable: key})
    assert settings.voice_key == key


def test_the_main_name_of_the_deployment_key_wins_over_its_alias(tmp_path: Path) -> None:
    environ = {"VOXROOM_DATA_DIR": str(tmp_path), "VOXROOM_VOICE_KEY": "ab" * 32, "VOXROOM_SECRET_KEY": "cd" * 32}
    assert load_settings(None, environ).voice_key == "ab" * 32


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("off", False), ("on", True)])
def test_the_per_layer_timbre_switch_reaches_the_enrollment_service(
    tmp_path: Path, value: str | None, expected: bool
) -> None:
    from voxroom.app import build_enrollment

    environ = {"VOXROOM_DATA_DIR": str(tmp_path)} | ({"VOXROOM_FIT_LAYERS": value} if value else {})
    settings = load_settings(None, environ)
    assert settings.fit_layers is expected
    assert build_enrollment(settings).fit_per_layer_timbre is expected
