"""The fit itself: it improves its objective, stays in budget, and refuses bad input."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from synth.engines.kokoro_layers import LAYER_GROUPS
from synth.enroll.contract import PACK_SHAPE, FitTarget, FittedStyle
from synth.fit import fit_style, kokoro_torch, nearest_stock_pack, resemblyzer_torch, style_fit
from synth.fit.quality_guard import SCALES, GuardResult, guard_passage
from synth.fit.style_fit import GUARD_SHARES, TRAINING_SENTENCES, FitSettings, StepCounts, guard_reserve_s

BUDGET_S = 40.0


def speaker_similarity(pack: np.ndarray, target: FitTarget, layers: np.ndarray | None = None) -> float:
    """Resemblyzer cosine of a torch render of one training sentence to the target voiceprint."""
    from synth.text.g2p import G2P

    tokens = kokoro_torch.token_ids(G2P().phonemize(TRAINING_SENTENCES["en"][0], "en"))
    with torch.no_grad():
        layers_t = None if layers is None else torch.from_numpy(layers)
        render = kokoro_torch.run(tokens, kokoro_torch.style_row(pack, len(tokens)), layers=layers_t)
    return float(resemblyzer_torch.embed(render.audio) @ torch.as_tensor(target.voiceprint))


@pytest.mark.slow
# The pitch stage's share of the budget (6 CPU-s here) counts from the fit's start: a cold process on a slower CPU
# (Ice Lake, first in its lane) spent it all on loading and took no pitch step.
@pytest.mark.usefixtures("warm_fit")
def test_fit_improves_the_objective_within_budget(english_target: FitTarget, start_pack: np.ndarray) -> None:
    seen: list[float] = []
    steps: list[StepCounts] = []
    begin = time.process_time()
    fitted = fit_style(
        english_target,
        start_pack,
        progress=lambda f, s: seen.append(f),
        cpu_budget_s=BUDGET_S,
        settings=FitSettings(quality_guard=False),  # the gradient fit alone; the guard is tested below
        on_steps=steps.append,
    )
    spent = time.process_time() - begin
    # The fit says how many steps the budget gave each stage: some of each, the pitch's within its cap.
    ((taken,),) = (steps,)
    assert 0 < taken.pitch <= FitSettings().pitch_steps and taken.style > 0 and taken.layers > 0
    pack, layers = fitted.pack, fitted.layers
    assert pack.shape == PACK_SHAPE and pack.dtype == np.float32 and np.isfinite(pack).all()
    assert spent <= BUDGET_S * 1.1
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert not np.allclose(pack, start_pack)
    # One offset for every row: the voice does not depend on sentence length.
    offsets = (pack - start_pack).reshape(510, 256)
    assert np.allclose(offsets, offsets[0], atol=1e-5)
    # The style stage has only about half the budget (a few steps when the tests share the CPU): the whole fit
    # must move the voice toward the speaker, and the last stage, each decoder layer's timbre, must add to it.
    assert layers is not None and layers.shape == (58, 128) and np.isfinite(layers).all()
    fitted_rows = list(LAYER_GROUPS["upsample2"])  # FitSettings' default: the generator's last residual blocks
    assert (np.abs(layers[fitted_rows]).sum(axis=1) > 0).all()
    assert not np.delete(layers, fitted_rows, axis=0).any()
    whole = speaker_similarity(pack, english_target, layers)
    assert whole > speaker_similarity(start_pack, english_target) + 0.01
    assert whole > speaker_similarity(pack, english_target)
    # A voice that moved is served with the noise suppressor's share of its output.
    assert fitted.denoise == FitSettings().denoise_output > 0.0


def shares_that_move(whole: FittedStyle, start_pack: np.ndarray) -> list[tuple[float, float]]:
    """The (style, layers) shares the guard may try on a whole fit. A share of a style that took no step (a cold
    process may spend a small budget on the layers alone) would be the start pack again, so it is not tried."""
    shares = GUARD_SHARES if whole.layers is not None else [(share, 0.0) for share in SCALES]
    style_moved = not np.array_equal(whole.pack, start_pack)
    moving = [(s, layer) for s, layer in shares if (style_moved and s > 0) or (whole.layers is not None and layer > 0)]
    assert moving
    return moving


@pytest.mark.usefixtures("warm_fit")  # small budgets: the load must not count
def test_a_fit_the_quality_guard_rejects_leaves_the_start_pack(
    english_target: FitTarget, start_pack: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[bool] = []

    def worse_when_moved(language_hint: str, passage: object = None):  # type: ignore[no-untyped-def]
        assert language_hint == english_target.language_hint

        def score(fitted: FittedStyle) -> float:
            moved = not np.array_equal(fitted.pack, start_pack) or fitted.layers is not None
            scored.append(moved)
            assert fitted.denoise == 0.0  # the guard hears the engine alone, never the suppressor
            return 2.0 if moved else 3.0

        return score

    monkeypatch.setattr(style_fit, "served_quality", worse_when_moved)
    stages: list[str] = []
    offered: list[tuple[GuardResult, FittedStyle]] = []
    fitted = fit_style(
        # Enough CPU for the fit to move on a CPU without VNNI beside another test (12 s once left it unmoved).
        english_target, start_pack, progress=lambda f, s: stages.append(s), cpu_budget_s=20.0,
        on_guard=lambda guard, whole: offered.append((guard, whole)),
    )
    assert "checking that the voice sounds clean" in stages
    np.testing.assert_array_equal(fitted.pack, start_pack)
    assert fitted.layers is None  # none of the per-layer timbre is kept either
    assert fitted.denoise == 0.0  # and the start pack is served as it is, without the suppressor
    ((decision, whole),) = offered
    assert decision.scale == 0.0 and decision.kept.tolist() == [0.0, 0.0]
    # The start pack, then every share of the fit (style, layers) until none is left.
    shares = shares_that_move(whole, start_pack)
    assert scored == [False] + [True] * len(shares)
    assert [share for share, _ in decision.tried] == [style for style, _ in shares]


def test_the_guard_keeps_back_a_score_for_every_share_at_what_a_score_costs_here() -> None:
    settings = FitSettings()
    # A Zen 2 CPU scores the passage in about 10 CPU-s: all six shares need 66 of a 215 s budget with 10% headroom
    # (a fixed 32 s left room for two of them, and the fit was thrown away for five of nine speakers).
    assert guard_reserve_s(10.0, 6, 215.0, settings) == pytest.approx(66.0)
    assert guard_reserve_s(4.0, 6, 215.0, settings) == pytest.approx(26.4)  # a faster CPU keeps more for the fit
    assert guard_reserve_s(30.0, 6, 215.0, settings) == pytest.approx(settings.guard_max_share * 215.0)


def only_the_start_sounds_clean(  # type: ignore[no-untyped-def]
    scored: list[float], cost_s: float = 0.0, passages: list[object] | None = None
):
    """A stand-in for `served_quality` whose first score, the start pack's (taken before the fit), is the only clean
    one. Each score costs `cost_s` CPU-seconds and appends to `scored` the CPU time it ended at; `passages` gets the
    passage the guard was given."""

    def served_quality(language_hint: str, passage: object = None):  # type: ignore[no-untyped-def]
        if passages is not None:
            passages.append(passage)

        def score(fitted: FittedStyle) -> float:
            until = time.process_time() + cost_s
            while time.process_time() < until:
                pass
            scored.append(until)
            return 3.0 if len(scored) == 1 else 2.0

        return score

    return served_quality


@pytest.mark.slow
@pytest.mark.usefixtures("warm_fit")  # small budgets: the load must not count
def test_slow_guard_scores_still_try_every_share_within_the_budget(
    english_target: FitTarget, start_pack: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(style_fit, "served_quality", only_the_start_sounds_clean([], cost_s=0.6))  # a slow CPU
    offered: list[tuple[GuardResult, FittedStyle]] = []
    started = time.process_time()
    fit_style(
        english_target, start_pack, progress=lambda f, s: None, cpu_budget_s=20.0,
        on_guard=lambda guard, whole: offered.append((guard, whole)),
    )
    ((decision, whole),) = offered
    assert whole.layers is not None
    assert [share for share, _ in decision.tried] == [style for style, _ in shares_that_move(whole, start_pack)]
    assert decision.scale == 0.0
    assert time.process_time() - started < 20.0 + 1.0  # the budget holds


@pytest.mark.slow
def test_a_budget_too_small_for_any_step_keeps_the_start_pack_without_scoring_it(
    english_target: FitTarget, start_pack: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[float] = []
    monkeypatch.setattr(style_fit, "served_quality", only_the_start_sounds_clean(scored))
    steps: list[StepCounts] = []
    stages: list[str] = []
    fitted = fit_style(
        english_target, start_pack, progress=lambda f, s: stages.append(s), cpu_budget_s=1.0, on_steps=steps.append
    )
    assert steps == [StepCounts(0, 0, 0)]
    assert np.array_equal(fitted.pack, start_pack) and fitted.layers is None and fitted.denoise == 0.0
    assert scored == []  # the guard's score of the start pack would have bought nothing
    assert stages[-1] == "done"


@pytest.mark.slow
def test_a_fit_told_its_steps_takes_exactly_those_and_its_guard_tries_every_share_past_the_budget(
    english_target: FitTarget, start_pack: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored: list[float] = []
    passages: list[object] = []
    monkeypatch.setattr(style_fit, "served_quality", only_the_start_sounds_clean(scored, passages=passages))
    steps: list[StepCounts] = []
    offered: list[tuple[GuardResult, FittedStyle]] = []
    fit_style(
        # A budget of one CPU-second would take no step of the style or the layers, and no share to the guard.
        english_target, start_pack, progress=lambda f, s: None, cpu_budget_s=1.0,
        settings=FitSettings(steps=StepCounts(pitch=2, style=1, layers=1), guard_sentences=4),
        on_guard=lambda guard, whole: offered.append((guard, whole)), on_steps=steps.append,
    )
    assert steps == [StepCounts(2, 1, 1)]
    ((decision, whole),) = offered
    assert whole.layers is not None and not np.array_equal(whole.pack, start_pack)
    assert [share for share, _ in decision.tried] == [style for style, _ in GUARD_SHARES]
    assert decision.scale == 0.0 and len(scored) == 1 + len(GUARD_SHARES)
    assert passages == [guard_passage(english_target.language_hint, 4)]  # the guard hears the sentences it is told


@pytest.mark.slow
def test_a_fit_told_its_steps_is_the_same_fit_every_time(english_target: FitTarget, start_pack: np.ndarray) -> None:
    def fit() -> FittedStyle:
        settings = FitSettings(quality_guard=False, steps=StepCounts(pitch=1, style=1, layers=1))
        return fit_style(english_target, start_pack, progress=lambda f, s: None, settings=settings)

    first, again = fit(), fit()
    assert not np.array_equal(first.pack, start_pack) and first.layers is not None and again.layers is not None
    np.testing.assert_array_equal(first.pack, again.pack)
    np.testing.assert_array_equal(first.layers, again.layers)


def test_step_counts_are_three_whole_numbers() -> None:
    assert StepCounts.parse("20,24,30") == StepCounts(pitch=20, style=24, layers=30)
    assert FitSettings(steps=StepCounts.parse("0, 3,0")).steps == StepCounts(0, 3, 0)
    for bad in ("20,24", "20,24,30,1", "a,b,c", "20,-1,3", ""):
        with pytest.raises(ValueError, match="three whole numbers"):
            StepCounts.parse(bad)
    with pytest.raises(ValueError, match="negative"):
        StepCounts(1, -1, 1)


@pytest.mark.usefixtures("warm_fit")  # small budgets: the load must not count
def test_without_per_layer_timbre_the_style_takes_the_whole_budget(
    english_target: FitTarget, start_pack: np.ndarray
) -> None:
    stages: list[str] = []
    fitted = fit_style(
        english_target, start_pack, progress=lambda f, s: stages.append(s), cpu_budget_s=15.0,
        settings=FitSettings(quality_guard=False), per_layer_timbre=False,
    )
    assert fitted.layers is None
    assert not np.array_equal(fitted.pack, start_pack)  # the style did move
    assert any(stage.startswith("shaping the voice") for stage in stages)


@pytest.mark.usefixtures("warm_fit")  # small budgets: the load must not count
def test_the_per_layer_timbre_can_be_fitted_in_some_decoder_parts_only(
    english_target: FitTarget, start_pack: np.ndarray
) -> None:
    fitted = fit_style(
        english_target, start_pack, progress=lambda f, s: None, cpu_budget_s=20.0,
        settings=FitSettings(quality_guard=False, layer_groups=("body", "noise")),
    )
    assert fitted.layers is not None
    moved = np.abs(fitted.layers).sum(axis=1) > 0
    assert moved.tolist() == [row in LAYER_GROUPS["body"] or row in LAYER_GROUPS["noise"] for row in range(58)]


def test_nearest_stock_pack_is_a_real_pack(english_target: FitTarget) -> None:
    name, pack = nearest_stock_pack(english_target)
    assert name in ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
    assert pack.shape == PACK_SHAPE and np.isfinite(pack).all()
    pack[0, 0, 0] += 1.0  # a copy: the stock pack itself is untouched
    assert not np.array_equal(pack, nearest_stock_pack(english_target)[1])


def test_bad_inputs_are_refused(english_target: FitTarget, start_pack: np.ndarray) -> None:
    quiet = lambda f, s: None  # noqa: E731
    with pytest.raises(ValueError, match="style pack"):
        fit_style(english_target, start_pack[:100], progress=quiet)
    with pytest.raises(ValueError, match="cpu_budget_s"):
        fit_style(english_target, start_pack, progress=quiet, cpu_budget_s=0.0)
    with pytest.raises(ValueError, match="layer groups"):
        fit_style(english_target, start_pack, progress=quiet, settings=FitSettings(layer_groups=("vocoder",)))
    with pytest.raises(ValueError, match="share"):
        FitSettings(denoise_output=1.5)
    for count in (0, 7):
        with pytest.raises(ValueError, match="training_sentences"):
            FitSettings(training_sentences=count)
        with pytest.raises(ValueError, match="guard_sentences"):
            FitSettings(guard_sentences=count)
    broken = dataclasses.replace(english_target, voiceprint=np.full(256, np.nan, np.float32))
    with pytest.raises(ValueError, match="voiceprint"):
        fit_style(broken, start_pack, progress=quiet)


def test_the_spectrum_loss_hears_only_its_bands(english_target: FitTarget) -> None:
    audio = torch.from_numpy(np.random.default_rng(4).standard_normal(2 * 24000).astype(np.float32) * 0.05)
    band = FitSettings(mel_low_band=5, mel_top_band=55)
    # A recording that differs from the first only below 250 Hz and above 4 kHz sounds the same to this loss.
    edges = english_target.logmel_mean.copy()
    edges[55:] += 3.0
    edges[:5] -= 3.0
    other = dataclasses.replace(english_target, logmel_mean=edges)
    same = style_fit._spectrum_loss(audio, english_target, band), style_fit._spectrum_loss(audio, other, band)
    assert float(same[0]) == pytest.approx(float(same[1]), rel=1e-6)
    whole = FitSettings()  # bands 0..67 (to 7.5 kHz): it hears the edges
    heard = style_fit._spectrum_loss(audio, english_target, whole), style_fit._spectrum_loss(audio, other, whole)
    assert abs(float(heard[0]) - float(heard[1])) > 0.1
    with pytest.raises(ValueError, match="mel_low_band"):
        FitSettings(mel_low_band=55, mel_top_band=5)


def test_the_pitch_loss_weighs_the_pitch_range_only_as_asked(english_target: FitTarget) -> None:
    def contour(spread: float) -> torch.Tensor:  # log-F0 median and mean at 150 Hz, a narrow or a wide range
        return 150.0 * torch.exp(torch.tensor([-spread, 0.0, spread] * 8))

    narrow, wide = contour(0.05), contour(0.8)
    median_only = FitSettings(w_pitch_spread=0.0)
    losses = [float(style_fit._pitch_loss(f0, english_target, median_only)) for f0 in (narrow, wide)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert losses[0] > 0.0  # 150 Hz is not the recording's median
    with_range = FitSettings(w_pitch_spread=0.5)
    ranged = [float(style_fit._pitch_loss(f0, english_target, with_range)) for f0 in (narrow, wide)]
    assert abs(ranged[0] - ranged[1]) > 0.01


def test_the_stock_contrast_counts_only_what_a_render_has_of_the_stock_voices_beyond_the_recording(
    english_target: FitTarget, start_pack: np.ndarray
) -> None:
    from synth.text.g2p import G2P

    voiceprint = torch.as_tensor(english_target.voiceprint) / float(np.linalg.norm(english_target.voiceprint))
    anchors = style_fit.StockAnchors.for_voiceprint(voiceprint)
    assert anchors.prints.shape == (5, 256)
    assert float(anchors.excess(voiceprint)) == 0.0  # the recording is exactly as like each stock voice as itself
    # A stock voice's own render is more like its stock print than a real speaker is.
    tokens = kokoro_torch.token_ids(G2P().phonemize(TRAINING_SENTENCES["en"][0], "en"))
    with torch.no_grad():
        audio = kokoro_torch.run(tokens, kokoro_torch.style_row(start_pack, len(tokens))).audio
    render_print = resemblyzer_torch.embed(audio)
    excess = float(anchors.excess(render_print))
    assert excess > 0.02
    # The term adds its weight times that excess to the loss, and only when asked; the speaker term is untouched.
    plain = style_fit._speaker_loss(audio, english_target, voiceprint, FitSettings(), anchors)
    weighted = style_fit._speaker_loss(audio, english_target, voiceprint, FitSettings(w_stock_contrast=2.0), anchors)
    assert float(weighted[0]) == pytest.approx(float(plain[0]), abs=1e-6)
    assert float(weighted[1] - plain[1]) == pytest.approx(2.0 * excess, rel=1e-4)


def test_the_fit_steps_through_as_many_training_sentences_as_asked() -> None:
    for lang in ("en", "zh", "ja"):
        three, six = style_fit.training_tokens(lang, 3), style_fit.training_tokens(lang, 6)
        assert len(three) == 3 and len(six) == 6 and six[:3] == three
        assert len({tuple(tokens) for tokens in six}) == 6 and all(len(tokens) > 10 for tokens in six)
    # A recording of unknown language trains on English and Japanese alike.
    assert [lang for _, lang in style_fit.training_texts("unknown", 2)] == ["en", "en", "ja", "ja"]
