"""Fit a Kokoro style pack to an enrolled voice by gradient descent through the engine.

The fitted pack is the start pack plus one offset applied to every row (the rows only
differ by input length), so the voice stays the same whatever the sentence length.
The offset lives in units of the stock rows' per-dimension spread and is pulled
toward their principal subspace, which keeps the style in the region where the
engine has been seen to sound natural.

Loss, on renders of a few short sentences in the speaker's language:
- pitch: log-F0 median of the predictor's F0 curve against the recording's (its spread too, if asked);
- speaker: 1 - cos(Resemblyzer(render), voiceprint of the recording);
- spectrum: long-term log-mel shape (level removed, below 7.5 kHz) against the recording's;
- prior: Mahalanobis length inside the stock subspace, plain length outside it.
Three stages. The halves do different jobs: first the prosody half (128..255) is
fitted to the pitch through the duration/F0 predictor alone, which is cheap; then the
timbre half (0..127) is fitted to the speaker and spectrum through the whole engine
with the prosody half frozen. Letting the speaker loss move the prosody half drove the
pitch away from the speaker's (the encoder rewards it), whatever the pitch weight.
The timbre half stops gaining within half the budget (a fit of 110 CPU-s scored as
well as one of 200), so the rest goes to the third stage: one timbre offset per
decoder AdaIN layer (`synth.engines.kokoro_layers`), same losses. On four speakers at
the same 200 CPU-s it raised the judge's similarity from 0.36 to 0.51 (0..1 scale)
where the style alone had stalled, at a DNSMOS 0.05 lower (3.10 against 3.14); a deployment
can turn this stage off (`per_layer_timbre=False`). Only the generator's last residual blocks
(the 18 layers nearest the waveform, LAYER_GROUPS["upsample2"]) are fitted: they hold almost
all of what the layers add to the likeness, and fits of theirs alone passed the quality guard
more often (docs/voice-fit.md). Last, `synth.fit.quality_guard` keeps
the first of a few shares of the style and of the layers (GUARD_SHARES) whose served output
scores no worse on DNSMOS than the start pack's. The judge used by the benchmark never
appears here.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from synth.engines.kokoro_layers import LAYER_GROUPS, LAYERS, TIMBRE_DIMS
from synth.enroll.contract import FIT_CPU_BUDGET_S, PACK_SHAPE, FitTarget, FittedStyle, check_pack
from synth.fit import kokoro_torch, resemblyzer_torch
from synth.fit.quality_guard import (
    GUARD_SENTENCES,
    MOST_GUARD_SENTENCES,
    SCALES,
    GuardResult,
    guard_passage,
    keep_first_clean,
    served_quality,
)
from synth.fit.stock import stock_packs
from synth.fit.torch_features import speech_log_mel_stats

if TYPE_CHECKING:
    from synth.text.g2p import G2P

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]

# Short sentences (about 1.5-2.5 s): long enough for one Resemblyzer window, cheap to back-propagate. None
# shares words with the enrollment test sentence, which the similarity score and the quality guard hear.
# The fit uses the first FitSettings.training_sentences of each language's.
TRAINING_SENTENCES = {
    "en": (
        "Let me know when you get home.", "Could you pass me that book?", "We will meet again next week.",
        "She found fresh bread at the corner shop.", "Turn off the lights when the film starts.",
        "Our team won the match on Sunday.",
    ),
    "zh": (
        "我马上就到，请等一下。", "请把那本书递给我。", "我们下周再见面吧。",
        "她在街角的小店找到了面包。", "电影开始以后请关灯。", "我们队星期天赢了比赛。",
    ),
    "ja": (
        "駅で待っています。", "その本を取ってください。", "また来週会いましょう。",
        "角の店でパンを見つけました。", "映画が始まったら電気を消して。", "日曜日の試合に勝ちました。",
    ),
}
# How many of each language's the fit uses unless told otherwise, and the most it can be told to use.
DEFAULT_TRAINING_SENTENCES = 6
MOST_TRAINING_SENTENCES = min(len(sentences) for sentences in TRAINING_SENTENCES.values())
# An unknown language trains on English and Japanese alike.
_LANGS_FOR_HINT = {"en": ("en",), "zh": ("zh",), "ja": ("ja",), "unknown": ("en", "ja")}


# What the quality guard tries, in turn, as (share of the style fit, share of the per-layer timbre): the whole
# fit, then less of both, then the style with less or none of the layers (a style-only fit passed the guard
# more often than a whole fit does). Each try is a render and a DNSMOS score of the guard's passage.
GUARD_SHARES = ((1.0, 1.0), (0.6, 0.6), (1.0, 0.0), (0.3, 0.3), (0.6, 0.0), (0.3, 0.0))


@dataclass(frozen=True)
class StepCounts:
    """Steps of each stage of a fit: what a budget gave (`fit_style`'s `on_steps`), or what a fit must take.

    A fit told its counts (`FitSettings.steps`) takes exactly these, whatever they cost, and its guard tries every
    share: the same recording then gives the same fit on any day. Under a CPU budget the counts move with the
    machine's load and speed, and where they end moves a fit more than most changes under test (README "Your
    voice"), so comparisons of fits use counts. Serving uses the budget."""

    pitch: int
    style: int
    layers: int

    def __post_init__(self) -> None:
        if min(self.pitch, self.style, self.layers) < 0:
            raise ValueError("step counts cannot be negative")

    @classmethod
    def parse(cls, text: str) -> StepCounts:
        """From 'PITCH,STYLE,LAYERS' (a command-line flag)."""
        parts = text.split(",")
        if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
            raise ValueError(f"step counts are three whole numbers, PITCH,STYLE,LAYERS (got {text!r})")
        return cls(*(int(part) for part in parts))


@dataclass(frozen=True)
class FitSettings:
    principal_dims: int = 24  # stock principal directions the offset may use freely
    lr: float = 0.15
    pitch_steps: int = 20  # cheap predictor-only steps that set the pitch first
    pitch_lr: float = 0.1
    pitch_budget_share: float = 0.15
    w_pitch: float = 1.0
    # Weight of the pitch range (log-F0 spread) against the median in the pitch loss; 0: the median alone. At 0.5,
    # on the nine reference speakers, the whole fits lost 0.19 more P.835 for 0.026 more likeness, and zh_THCHS30-D4's
    # fitted prosody half alone took its P.835 from 3.16 to 2.31 (docs/voice-fit.md).
    w_pitch_spread: float = 0.0
    w_spectrum: float = 0.05
    # Compare the render's spectrum with the recording's after adding the recording's noise floor to the render
    # (torch_features.speech_log_mel_stats), so the fit matches the voice rather than the room's noise. Off: on
    # the nine reference speakers it changed neither the whole fits' DNSMOS nor their likeness beyond run-to-run
    # spread (docs/voice-fit.md).
    spectrum_in_room: bool = False
    w_prior_inside: float = 0.0005
    w_prior_outside: float = 0.003
    mel_low_band: int = 0  # the spectrum loss compares bands mel_low_band..mel_top_band-1 (band 5: 250 Hz)
    mel_top_band: int = 68  # bands 0..67 of 80 lie below about 7.5 kHz (55: 4 kHz)
    voiced_hz: float = 40.0  # the predictor gives about 10 Hz on unvoiced frames
    # Share of the budget at which the style stops and the per-layer timbre starts (0 = none, 1 = no layers).
    style_budget_share: float = 0.55
    layer_lr: float = 0.2  # in stock-spread units of the timbre half, like the style offset
    w_layer_prior: float = 0.0002
    # Weight of the stock-contrast term of the speaker loss: how far a render is more like each stock voice (by the
    # fitting encoder) than the recording is, averaged over the stock voices. 0: off. At 1 and 0.3 the whole fits
    # were more alike (top-1 8/9) but rougher, and the guards kept less (docs/voice-fit.md).
    w_stock_contrast: float = 0.0
    # How many of each language's TRAINING_SENTENCES the fit steps through, one per step. Six since s34: over six
    # runs of the nine reference speakers against five at three, the served voices were more alike (0.525 against
    # 0.514), top-1 45/54 against 34/45, P.835 0.002 below stock against 0.017 below, at the same fit time; the
    # gain is mostly the Mandarin speakers' (docs/voice-fit.md). The colour is still measured on three.
    training_sentences: int = DEFAULT_TRAINING_SENTENCES
    # Decoder parts (kokoro_layers.LAYER_GROUPS) whose per-layer timbre is fitted; the other rows stay zero.
    layer_groups: tuple[str, ...] = ("upsample2",)
    # The quality guard scores the start pack before the fit, which says what one score of its passage costs on
    # this CPU, and keeps back enough of the budget to score every share it may try (up to this share of the
    # budget). A fixed 32 CPU-s let a Zen 2 CPU (about 10 s a score) try one or two shares, then keep nothing.
    guard_max_share: float = 0.35
    quality_guard: bool = True
    # Sentences the quality guard hears (quality_guard.guard_passage): more judge a share's DNSMOS change more
    # surely, for about 2.5 CPU-s a sentence on each share tried (bench/guard_replay.py --more-guard-sentences).
    guard_sentences: int = GUARD_SENTENCES
    # Share of a noise suppressor's output (synth.output_denoise) mixed into a fitted voice's, after the guards,
    # which hear the engine alone: the fits hiss, and the suppressor wins back P.835 DNSMOS (docs/voice-fit.md).
    # 0 turns it off.
    denoise_output: float = 0.5
    # Exact steps per stage instead of the budget's (StepCounts): for comparing fits, never for serving.
    steps: StepCounts | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.mel_low_band < self.mel_top_band <= 80:
            raise ValueError("the spectrum loss needs 0 <= mel_low_band < mel_top_band <= 80")
        if not 1 <= self.training_sentences <= MOST_TRAINING_SENTENCES:
            raise ValueError(f"training_sentences must be 1 to {MOST_TRAINING_SENTENCES}")
        if not 1 <= self.guard_sentences <= MOST_GUARD_SENTENCES:
            raise ValueError(f"guard_sentences must be 1 to {MOST_GUARD_SENTENCES}")
        if not 0.0 <= self.denoise_output <= 1.0:
            raise ValueError("denoise_output is a share, from 0 to 1")


@dataclass(frozen=True)
class StockSpace:
    """Per-dimension spread and principal directions of every stock row (standardised)."""

    sigma: torch.Tensor  # [256]
    basis: torch.Tensor  # [256, k] orthonormal
    variances: torch.Tensor  # [k] variance along each direction (standardised units)


@functools.lru_cache(maxsize=4)
def stock_space(k: int) -> StockSpace:
    rows = np.concatenate([p.reshape(-1, 256) for p in stock_packs().values()]).astype(np.float64)
    sigma = rows.std(axis=0) + 1e-6
    z = (rows - rows.mean(axis=0)) / sigma
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    variances = (s[:k] ** 2) / (z.shape[0] - 1)
    return StockSpace(
        sigma=torch.tensor(sigma, dtype=torch.float32),
        basis=torch.tensor(vt[:k].T.copy(), dtype=torch.float32),
        variances=torch.tensor(variances, dtype=torch.float32),
    )


def training_texts(language_hint: str, per_language: int = DEFAULT_TRAINING_SENTENCES) -> list[tuple[str, str]]:
    """(text, language) of the sentences the fit trains on, for a recording in `language_hint`."""
    langs = _LANGS_FOR_HINT.get(language_hint, ("en", "ja"))
    return [(text, lang) for lang in langs for text in TRAINING_SENTENCES[lang][:per_language]]


def training_tokens(language_hint: str, per_language: int = DEFAULT_TRAINING_SENTENCES) -> list[list[int]]:
    """Token ids of the training sentences (training_texts), one list per sentence."""
    tokens = []
    for text, lang in training_texts(language_hint, per_language):
        ids = kokoro_torch.token_ids(_g2p().phonemize(text, lang))
        if ids:
            tokens.append(ids)
    return tokens


@functools.cache
def _g2p() -> G2P:
    """One text front end per process: each language's loads once (synth.fit.warm_up), not in every fit's budget."""
    from synth.text.g2p import G2P

    return G2P()


def _layer_rows(groups: tuple[str, ...]) -> torch.Tensor:
    """[58, 1]: 1 for the rows of the per-layer timbre in `groups`, else 0."""
    unknown = set(groups) - set(LAYER_GROUPS)
    if unknown or not groups:
        raise ValueError(f"layer groups must be some of {sorted(LAYER_GROUPS)}, got {sorted(groups)}")
    rows = torch.zeros(LAYERS, 1)
    for group in groups:
        rows[list(LAYER_GROUPS[group])] = 1.0
    return rows


def _prior(d: torch.Tensor, space: StockSpace, s: FitSettings) -> torch.Tensor:
    inside = space.basis.T @ d
    outside = d - space.basis @ inside
    return s.w_prior_inside * (inside**2 / space.variances).sum() + s.w_prior_outside * (outside**2).sum()


def _pitch_loss(f0_hz: torch.Tensor, target: FitTarget, s: FitSettings) -> torch.Tensor:
    voiced = f0_hz[f0_hz.detach() > s.voiced_hz]
    if voiced.numel() < 4 or target.f0_median_hz <= 0:
        return f0_hz.sum() * 0.0
    log_f0 = torch.log(voiced)
    target_median = math.log(target.f0_median_hz)
    # The 10-90 % range of a normal distribution spans 2.56 standard deviations.
    target_spread = math.log(max(target.f0_p90_hz, 1.0) / max(target.f0_p10_hz, 1.0)) / 2.56
    median = log_f0.median() * 0.5 + log_f0.mean() * 0.5  # the median alone has a one-element gradient
    return (median - target_median) ** 2 + s.w_pitch_spread * (log_f0.std() - target_spread) ** 2


def _spectrum_loss(audio: torch.Tensor, target: FitTarget, s: FitSettings) -> torch.Tensor:
    room = None
    if s.spectrum_in_room and target.noise_mel is not None:
        room = (torch.as_tensor(target.noise_mel, dtype=torch.float32), torch.as_tensor(target.logmel_mean))
    mean, std = speech_log_mel_stats(audio, room)
    bands = slice(s.mel_low_band, s.mel_top_band)
    t_mean = torch.as_tensor(target.logmel_mean[bands], dtype=torch.float32)
    t_std = torch.as_tensor(target.logmel_std[bands], dtype=torch.float32)
    shape = mean[bands] - mean[bands].mean()  # level differs between recording and render: compare shape
    t_shape = t_mean - t_mean.mean()
    return ((shape - t_shape) ** 2).mean() + ((std[bands] - t_std) ** 2).mean()


@dataclass(frozen=True)
class StockAnchors:
    """The stock voices' fitting-encoder prints, and the recording's cosine to each."""

    prints: torch.Tensor  # [voices, 256], unit rows
    recording_cosines: torch.Tensor  # [voices]

    @classmethod
    def for_voiceprint(cls, voiceprint: torch.Tensor) -> StockAnchors:
        from synth.enroll.tasks import stock_prints

        prints = torch.tensor(np.stack([p["voiceprint"] for p in stock_prints().values()]), dtype=torch.float32)
        prints = prints / prints.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return cls(prints, prints @ voiceprint)

    def excess(self, embedding: torch.Tensor) -> torch.Tensor:
        """Mean over the stock voices of how much more like each the render is than the recording (0 if less)."""
        return torch.relu(self.prints @ embedding - self.recording_cosines).mean()


def _speaker_loss(
    audio: torch.Tensor, target: FitTarget, voiceprint: torch.Tensor, s: FitSettings,
    anchors: StockAnchors | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 - Resemblyzer cosine to the voiceprint, that plus the weighted spectrum and stock-contrast losses)."""
    embedding = resemblyzer_torch.embed(audio)
    speaker = 1.0 - torch.dot(embedding, voiceprint)
    loss = speaker + s.w_spectrum * _spectrum_loss(audio, target, s)
    if anchors is not None:  # fit_style makes them only when the term has a weight
        loss = loss + s.w_stock_contrast * anchors.excess(embedding)
    return speaker, loss


# CPU seconds per token of a pitch step (the predictor alone) and of a speaker step (a whole render), first guessed
# from this machine class, then measured; a stage takes a step only if this many times its cost still fits.
PITCH_STEP_COST_GUESS, SPEAKER_STEP_COST_GUESS = 0.04, 0.3
PITCH_STEP_MARGIN, SPEAKER_STEP_MARGIN = 1.5, 1.2


def _a_first_step_fits(cpu_budget_s: float, settings: FitSettings, first_sentence_tokens: int) -> bool:
    """Whether the budget could give any stage its first step at the guessed costs, with nothing kept back for the
    guard (so a False is sure: no stage would step)."""
    pitch = settings.pitch_steps > 0 and (
        PITCH_STEP_MARGIN * PITCH_STEP_COST_GUESS * first_sentence_tokens <= settings.pitch_budget_share * cpu_budget_s
    )
    return pitch or SPEAKER_STEP_MARGIN * SPEAKER_STEP_COST_GUESS * first_sentence_tokens <= cpu_budget_s


class _SpeakerSteps:
    """Gradient steps on a render's speaker loss, one training sentence each, kept within a CPU budget."""

    def __init__(
        self, sentences: list[list[int]], spent: Callable[[], float], progress: Progress, budget_s: float,
        cost_per_token: float,
    ) -> None:
        self.sentences, self.spent, self.progress, self.budget_s = sentences, spent, progress, budget_s
        self.cost_per_token = cost_per_token  # CPU-s per token of a step: a first guess, then measured
        self.step = 0  # across stages, so each stage starts on the next sentence

    def run(
        self,
        loss_of: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]],
        param: torch.Tensor,
        opt: torch.optim.Optimizer,
        until_s: float,
        grad_mask: torch.Tensor | None = None,
        count: int | None = None,
    ) -> int:
        """Steps until the next would end after `until_s` CPU-s of the fit, or exactly `count` steps whatever
        they cost; returns how many were taken."""
        taken = 0
        while True:
            tokens = self.sentences[self.step % len(self.sentences)]
            if count is not None and taken >= count:
                return taken
            if count is None and self.spent() + SPEAKER_STEP_MARGIN * self.cost_per_token * len(tokens) > until_s:
                return taken
            t0 = time.process_time()
            opt.zero_grad()
            speaker, loss = loss_of(tokens)
            loss.backward()
            if param.grad is not None and torch.isfinite(param.grad).all():
                if grad_mask is not None:
                    param.grad *= grad_mask
                opt.step()
            measured = (time.process_time() - t0) / len(tokens)
            first = self.step == 0
            self.cost_per_token = max(self.cost_per_token, measured) if first else (
                0.7 * self.cost_per_token + 0.3 * measured
            )
            self.step += 1
            taken += 1
            similarity = 1.0 - float(speaker.detach())
            self.progress(min(0.99, self.spent() / self.budget_s), f"shaping the voice (similarity {similarity:.2f})")


def _apply(start_pack: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return (start_pack.reshape(-1, 256) + offset[None, :]).reshape(PACK_SHAPE).astype(np.float32)


# A share of the fit may say the guard's passage a little slower than the start pack (measured: up to 6% more
# CPU on three fits), so each share is budgeted at this much of the start pack's score.
GUARD_SCORE_HEADROOM = 1.1


def guard_reserve_s(score_cost_s: float, shares: int, cpu_budget_s: float, settings: FitSettings) -> float:
    """CPU-s the fit leaves for the quality guard: a score of its passage for every share it may try, at what
    scoring the start pack cost on this CPU (with headroom), up to `guard_max_share` of the budget."""
    return min(settings.guard_max_share * cpu_budget_s, shares * score_cost_s * GUARD_SCORE_HEADROOM)


def fit_style(
    target: FitTarget,
    start_pack: np.ndarray,
    *,
    progress: Progress,
    cpu_budget_s: float = FIT_CPU_BUDGET_S,
    settings: FitSettings = FitSettings(),
    on_guard: Callable[[GuardResult, FittedStyle], None] | None = None,
    on_steps: Callable[[StepCounts], None] | None = None,
    per_layer_timbre: bool = True,
) -> FittedStyle:
    """A style pack [510, 1, 256] and per-layer timbre fitted to `target`, from `start_pack`, within the budget.

    `per_layer_timbre=False` fits the style alone, with the whole budget: a voice less like its speaker that
    sounds as clean as the stock voices (the deployment's choice; see README "Your voice").

    `on_guard` is told what the quality guard decided and the whole fit it was offered, `on_steps` how many
    steps each stage took (the benchmark records them). With `settings.steps` the fit takes exactly those,
    whatever the budget (see StepCounts).
    """
    start = time.process_time()
    pack = check_pack(start_pack)
    if not per_layer_timbre:
        settings = replace(settings, style_budget_share=1.0)
    if cpu_budget_s <= 0 or not math.isfinite(cpu_budget_s):
        raise ValueError("cpu_budget_s must be a positive number of seconds")
    fitted_rows = _layer_rows(settings.layer_groups)
    voiceprint = torch.as_tensor(target.voiceprint, dtype=torch.float32)
    if voiceprint.shape != (256,) or not torch.isfinite(voiceprint).all():
        raise ValueError("the target voiceprint must be a finite 256-d vector")
    voiceprint = voiceprint / voiceprint.norm().clamp_min(1e-12)
    anchors = StockAnchors.for_voiceprint(voiceprint) if settings.w_stock_contrast > 0 else None
    torch.set_num_threads(1)

    def spent() -> float:
        return time.process_time() - start

    progress(0.0, "preparing the voice model")
    sentences = training_tokens(target.language_hint, settings.training_sentences)
    fixed = settings.steps  # exact steps per stage, or None: the budget decides
    if fixed is None and not _a_first_step_fits(cpu_budget_s, settings, len(sentences[0])):
        # Nothing can move the start pack, so the guard's score of it (several CPU-s) would be spent for nothing.
        log.info("fit budget of %.1f CPU-s too small for a step: the start pack is kept", cpu_budget_s)
        if on_steps is not None:
            on_steps(StepCounts(0, 0, 0))
        progress(1.0, "done")
        return FittedStyle(pack, None)
    guard_shares = GUARD_SHARES if settings.style_budget_share < 1.0 else tuple((s, 0.0) for s in SCALES)
    if settings.quality_guard:
        score = served_quality(target.language_hint, guard_passage(target.language_hint, settings.guard_sentences))
        t0 = time.process_time()
        start_quality = score(FittedStyle(pack, None))
        score_cost = time.process_time() - t0
        guard_s = guard_reserve_s(score_cost, len(guard_shares), cpu_budget_s, settings)
    else:
        guard_s = 0.0
    space = stock_space(settings.principal_dims)
    kokoro_torch.graph()
    pack_t = torch.from_numpy(pack.reshape(-1, 256))
    d = torch.zeros(256, requires_grad=True)  # offset in stock-spread units

    def style_for(tokens: list[int]) -> torch.Tensor:
        return kokoro_torch.style_row(pack_t, len(tokens)) + space.sigma * d

    # Stage 1: pitch, through the predictor only (a fraction of the cost of a full render).
    prosody_mask = torch.zeros(256)
    prosody_mask[128:] = 1.0
    timbre_mask = 1.0 - prosody_mask
    pitch_opt = torch.optim.Adam([d], lr=settings.pitch_lr)
    pitch_cost_per_token, cost_per_token = PITCH_STEP_COST_GUESS, SPEAKER_STEP_COST_GUESS
    pitch_taken = 0
    for step in range(settings.pitch_steps if fixed is None else fixed.pitch):
        tokens = sentences[step % len(sentences)]
        if fixed is None and spent() + PITCH_STEP_MARGIN * pitch_cost_per_token * len(tokens) > (
            settings.pitch_budget_share * cpu_budget_s
        ):
            break
        t0 = time.process_time()
        pitch_opt.zero_grad()
        render = kokoro_torch.run(tokens, style_for(tokens), with_audio=False)
        loss = settings.w_pitch * _pitch_loss(render.f0_hz, target, settings) + _prior(d, space, settings)
        loss.backward()
        assert d.grad is not None
        d.grad *= prosody_mask
        pitch_opt.step()
        pitch_taken += 1
        pitch_cost_per_token = max(pitch_cost_per_token, (time.process_time() - t0) / len(tokens))
        progress(min(0.95, spent() / cpu_budget_s), "matching the pitch")

    # Stage 2: the timbre half, one sentence per step, until its share of the budget would be exceeded.
    fit_end = cpu_budget_s - guard_s
    steps = _SpeakerSteps(sentences, spent, progress, cpu_budget_s, cost_per_token)

    def style_loss(tokens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        speaker, loss = _speaker_loss(
            kokoro_torch.run(tokens, style_for(tokens)).audio, target, voiceprint, settings, anchors
        )
        return speaker, loss + _prior(d, space, settings)

    style_steps = steps.run(
        style_loss, d, torch.optim.Adam([d], lr=settings.lr), fit_end * settings.style_budget_share, timbre_mask,
        count=None if fixed is None else fixed.style,
    )

    # Stage 3: one timbre offset per decoder layer of the chosen groups, on the fitted style, to the budget's end.
    fitted_pack = torch.from_numpy(_apply(pack, (space.sigma * d.detach()).numpy()).reshape(-1, 256))
    z = torch.zeros(LAYERS, TIMBRE_DIMS, requires_grad=True)  # in stock-spread units of the timbre half

    def layer_loss(tokens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        style = kokoro_torch.style_row(fitted_pack, len(tokens))
        audio = kokoro_torch.run(tokens, style, layers=z * fitted_rows * space.sigma[:TIMBRE_DIMS]).audio
        speaker, loss = _speaker_loss(audio, target, voiceprint, settings, anchors)
        return speaker, loss + settings.w_layer_prior * (z**2).sum()

    # A style fit with the whole budget (per_layer_timbre=False) fits no layers, whatever its step counts say.
    layer_count = None if fixed is None else fixed.layers if settings.style_budget_share < 1.0 else 0
    layer_steps = steps.run(
        layer_loss, z, torch.optim.Adam([z], lr=settings.layer_lr), fit_end, count=layer_count
    )
    if on_steps is not None:
        on_steps(StepCounts(pitch_taken, style_steps, layer_steps))

    layers = (z.detach() * fitted_rows * space.sigma[:TIMBRE_DIMS]).numpy().astype(np.float32) if layer_steps else None
    fitted = FittedStyle(fitted_pack.numpy().reshape(PACK_SHAPE).copy(), layers)
    moved = layers is not None or not np.array_equal(fitted.pack, pack)
    if settings.quality_guard and moved:
        progress(min(0.99, spent() / cpu_budget_s), "checking that the voice sounds clean")
        # Shares of the way from the start pack to the whole fit, (style, layers): the guard keeps the first that
        # sounds clean. Parameters of the guard are the two shares; its label, the style's.
        shares = guard_shares if layers is not None else tuple((s, 0.0) for s in SCALES)
        # With a budget too small for a style step, a share of the style alone is the start pack: nothing to hear.
        style_moved = not np.array_equal(fitted.pack, pack)
        shares = tuple((s, layer) for s, layer in shares if (style_moved and s > 0) or (layers is not None and layer))
        guarded = keep_first_clean(
            np.zeros(2, np.float32),
            [(style_share, np.array([style_share, layer_share], np.float32)) for style_share, layer_share in shares],
            lambda kept: score(fitted.share_of_the_way(pack, float(kept[0]), float(kept[1]))),
            deadline=None if fixed is not None else start + cpu_budget_s,  # told its steps, the guard tries every share
            start_quality=(start_quality, score_cost),
        )
        style_share, layer_share = (float(x) for x in guarded.kept)
        log.info(
            "quality guard: kept %.0f%% of the style and %.0f%% of the layers (DNSMOS %.2f, start pack %.2f; "
            "%d of %d tried, %.1f CPU-s a score, %.0f CPU-s kept for them)", 100 * style_share, 100 * layer_share,
            guarded.quality, guarded.start_quality, len(guarded.tried), len(shares), score_cost, guard_s,
        )
        if on_guard is not None:
            on_guard(guarded, fitted)
        fitted = fitted.share_of_the_way(pack, style_share, layer_share)
    fitted = with_suppressor(fitted, pack, settings.denoise_output)
    progress(1.0, "done")
    return fitted


def with_suppressor(fitted: FittedStyle, start_pack: np.ndarray, share: float) -> FittedStyle:
    """`fitted` as it is served: a voice moved from its start pack gets `share` of the noise suppressor's output
    (FitSettings.denoise_output); the start pack itself is served as it is."""
    if fitted.layers is not None or not np.array_equal(fitted.pack, start_pack):
        return replace(fitted, denoise=share)
    return fitted
