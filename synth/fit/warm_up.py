"""Load what a fit uses once per process, before any voice's budget clock starts.

A fit's CPU budget is the voice's; loading the serving engine, DNSMOS, a language's text front end, the
differentiable graph and the fitting encoder is the process's. Left to the first fit, they took its budget: on a
2-core Zen 3 EPYC about 18 of the pitch stage's 32 CPU-s went before its first step (half of them loading), and the
predictor's first pass cost twice the next, which the stage's cautious cost estimate kept; so the first voice of a
fresh process got 8 pitch and 4 style steps where the voices after it got 20 and 6 to 10 (voice_similarity_s39.json;
on Ice Lake 11 and 5 against 20 and 5 to 10, s38).

The fit process calls `warm_up(fit_languages(hint))` before each fit (synth.enroll.jobs): the models load with the
first fit, and a language's front end with the first fit that speaks it, so a server whose voices are all English
never loads the Chinese and Japanese ones (about 200 MB and 2.3 CPU-s on Zen 5).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh", "ja")

_languages_loaded: set[str] = set()
_models_loaded = False


def fit_languages(language_hint: str) -> tuple[str, ...]:
    """The languages a fit of a recording in `language_hint` speaks: its training sentences, the guard's passage
    and the judge's test sentence."""
    from synth.enroll import render
    from synth.fit.quality_guard import guard_passage
    from synth.fit.style_fit import training_texts

    spoken = {lang for _, lang in training_texts(language_hint)} | {lang for _, lang in guard_passage(language_hint)}
    spoken.add(render.language_of_test_sentence(language_hint))
    return tuple(lang for lang in LANGUAGES if lang in spoken)


def _to_load(languages: tuple[str, ...]) -> tuple[list[str], bool]:
    """What `warm_up(languages)` has left to load in this process: the languages' front ends, and the models?"""
    return [lang for lang in languages if lang not in _languages_loaded], not _models_loaded


def still_to_load(languages: tuple[str, ...]) -> bool:
    """Whether `warm_up(languages)` has anything left to load in this process (the fit's progress says so only then)."""
    new, load_models = _to_load(languages)
    return bool(new) or load_models


def warm_up(languages: tuple[str, ...] = LANGUAGES) -> float:
    """Load the fit's models and the text front ends of `languages`, each once per process; returns the CPU-s it
    took (0 when all were loaded already).

    Each step is a cache the fit reads (the loaders are memoised), so a fit after this spends its budget on the
    voice alone."""
    global _models_loaded
    import numpy as np
    import torch

    from synth.enroll import judge
    from synth.fit import kokoro_torch, quality_guard, resemblyzer_torch, style_fit
    from synth.fit.stock import stock_packs

    started = time.process_time()
    new, load_models = _to_load(languages)
    for lang in new:
        # The serving engine and DNSMOS (loaded once), and the language's front end, by one short render scored, as
        # the guard's scorer loads them (once per process and language); then the fit's own front end for it.
        quality_guard.load_scoring(lang)
        style_fit.training_tokens(lang)
        _languages_loaded.add(lang)
    if load_models:
        style_fit.stock_space(style_fit.FitSettings().principal_dims)
        kokoro_torch.graph()
        # One predictor step on a training sentence and one fitting-encoder embedding: torch's first pass through
        # each costs about twice the next (its kernels are chosen on first use).
        tokens = style_fit.training_tokens(languages[0] if languages else "en")[0]
        pack = next(iter(stock_packs().values()))
        offset = torch.zeros(256, requires_grad=True)
        style = kokoro_torch.style_row(torch.tensor(pack.reshape(-1, 256)), len(tokens)) + offset  # as the fit does
        kokoro_torch.run(tokens, style, with_audio=False).f0_hz.mean().backward()
        resemblyzer_torch.embed(0.1 * torch.randn(24000))  # one second at the fit's 24 kHz
        judge.embed(0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32))  # scores the fit
        _models_loaded = True
    spent = time.process_time() - started
    if new or load_models:
        log.info("fit process loaded its models in %.1f CPU-s (new languages: %s)", spent, ", ".join(new) or "none")
    return spent
