"""The clauses the scheduler renders at startup to measure this machine's speed (`Scheduler.calibrate`).

A short and a longer one, so the cost model's per-call and per-second terms are both pinned down
(two renders: about 2 s of startup on a 2-core machine without VNNI); in the languages the engine's
first stock voice speaks.
"""

from __future__ import annotations

from synth.engines.base import ClauseRequest, Engine

CALIBRATION_TEXTS = {
    "zh": ("好的", "今天的会议改到下午三点了。"),
    "en": ("ok", "See you in five minutes, okay?"),
}


def calibration_clauses(engine: Engine) -> list[ClauseRequest]:
    voices = engine.stock_voices()
    if not voices:
        return []
    stock = voices[0]
    voice = engine.stock_voice(stock.name)
    spoken = [lang for lang in ("zh", "en") if lang in stock.languages] or ["en"]
    langs = [spoken[i % len(spoken)] for i in range(2)]  # short then longer, alternating languages
    return [ClauseRequest(text=CALIBRATION_TEXTS[lang][i], lang=lang, voice=voice) for i, lang in enumerate(langs)]
