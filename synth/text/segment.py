"""Split a message into clauses (the unit of streaming) and clauses into script runs.

The first clause is kept short so its audio can start early; later clauses may be
longer, since they are rendered while earlier ones play.
"""

from __future__ import annotations

import dataclasses
import re

# Sentence ends and clause breaks, kept attached to the text before them.
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])|(?<=\.)(?=\s|$)")
_CLAUSE_BREAK = re.compile(r"(?<=[，,、：:])")

# The first clause ends at the first break once it has this much: its audio is what the listener waits for.
FIRST_CLAUSE_MAX_CHARS = 8
CLAUSE_MAX_CHARS = 80
# A first clause with no break in it is cut at a space near this length.
FIRST_HARD_LIMIT = 24


def _pieces(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [p for p in (s.strip() for s in pattern.split(text)) if p]


def _hard_split(text: str, limit: int) -> list[str]:
    """Split an over-long run at spaces where possible, else at the limit."""
    out: list[str] = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        out.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        out.append(text)
    return out


def split_clauses(text: str) -> list[str]:
    """Clauses in speaking order. Short neighbours are merged, so no clause is a lone word."""
    clauses: list[str] = []
    for sentence in _pieces(text, _SENTENCE_END):
        current = ""
        for piece in _pieces(sentence, _CLAUSE_BREAK):
            limit = FIRST_CLAUSE_MAX_CHARS if not clauses else CLAUSE_MAX_CHARS
            if current and len(current) + len(piece) > limit:
                clauses.append(current)
                current = piece
            else:
                current = f"{current} {piece}".strip() if current and _needs_space(current, piece) else current + piece
        if current:
            clauses.append(current)
    result: list[str] = []
    for clause in clauses:
        if not result:  # a long first clause without breaks: cut its head short, the rest normally
            head, *rest = _hard_split(clause, FIRST_HARD_LIMIT)
            result.append(head)
            clause = " ".join(rest)
        result.extend(_hard_split(clause, CLAUSE_MAX_CHARS))
    return result


def _needs_space(left: str, right: str) -> bool:
    return left[-1].isascii() and right[0].isascii()


@dataclasses.dataclass(frozen=True)
class ScriptRun:
    text: str
    lang: str  # "zh", "en" or "ja"


def _char_script(ch: str) -> str | None:
    code = ord(ch)
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF:
        return "kana"
    if 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF:
        return "han"
    if ch.isascii() and ch.isalnum():
        return "latin"
    return None


def split_script_runs(clause: str, lang: str) -> list[ScriptRun]:
    """Runs of one script each: Han is read as Chinese, or as Japanese when the message is Japanese."""
    han_lang = "ja" if lang == "ja" else "zh"
    runs: list[ScriptRun] = []
    current = ""
    current_lang: str | None = None
    for ch in clause:
        script = _char_script(ch)
        if script is None or (current_lang is None and ch.isdigit()):
            # Punctuation and spaces stay with the run they follow; leading digits wait for
            # the script after them, so "3个" is read in Chinese.
            current += ch
            continue
        if script == "latin" and ch.isdigit() and current_lang is not None:
            run_lang = current_lang  # digits are read in the language around them
        else:
            run_lang = {"kana": "ja", "han": han_lang, "latin": "en"}[script]
        if current_lang is not None and run_lang != current_lang:
            runs.append(ScriptRun(current, current_lang))
            current = ""
        current_lang = run_lang
        current += ch
    if current.strip():
        if current_lang is None:
            if runs:
                runs[-1] = ScriptRun(runs[-1].text + current, runs[-1].lang)
            return runs
        runs.append(ScriptRun(current, current_lang))
    return runs
