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
# A first clause longer than this (in characters) is cut at a word boundary near FIRST_HEAD_TARGET,
# so the first audio costs about a second of speech to render, not a whole sentence.
FIRST_HEAD_SPLIT_OVER = {"cjk": 9, "latin": 26}
FIRST_HEAD_TARGET = {"cjk": 5, "latin": 14}
# When the engine streams inside a clause (its first words are heard while the rest is decoded), the first
# clause may be a whole short sentence, up to about 2 s of speech: no pause after a lone first word, and the
# sentence keeps its intonation. Longer first clauses cost more first-piece time (bench/ttfa.py: p50 286 ms
# with 14/45, 245 ms with 10/30).
FIRST_STREAMED_MAX_CHARS = {"cjk": 10, "latin": 30}
# Later clauses grow by at most this factor each (see _grow_gradually), from at least this much speech.
GROWTH = 1.8
MIN_CLAUSE_SECONDS = 0.8
SECONDS_PER_CJK_CHAR = 0.2
SECONDS_PER_LATIN_CHAR = 0.065
# A digit is read as a word or two: 二百六十三 is about 1.1 s of audio, "two hundred and sixty-three" about 1.7 s.
# Measured over 3 stock voices and numbers of 1-4 digits, per predicted second of speech like the rest of a
# clause (about 1.2 s of audio): 0.32-0.38 s per digit in Chinese, 0.39-0.49 s in English. At 0.35 in English,
# a number's render time was predicted 0.1-0.17 s short under load and the stream it continued ran dry.
SECONDS_PER_DIGIT = 0.35
SECONDS_PER_DIGIT_BY_LANG = {"en": 0.45}


def _pieces(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [p for p in (s.strip() for s in pattern.split(text)) if p]


def _is_cjk_text(text: str) -> bool:
    cjk = sum(1 for ch in text if _char_script(ch) in ("han", "kana"))
    return cjk * 2 >= len(text.replace(" ", ""))


def _word_ends(text: str) -> list[int]:
    """Offsets where a word ends: spaces for Latin text, jieba's segmentation for CJK."""
    if not _is_cjk_text(text):
        return [m.start() for m in re.finditer(r"\s", text)] + [len(text)]
    import jieba

    ends, position = [], 0
    for token in jieba.cut(text):
        position += len(token)
        ends.append(position)
    return ends


def _has_speech(text: str) -> bool:
    """Whether anything in `text` is spoken (a letter, digit or character, not only punctuation)."""
    return any(_char_script(ch) is not None for ch in text)


def _length_spoken(text: str) -> int:
    """Characters up to the last spoken one: closing punctuation does not make a clause longer."""
    end = len(text)
    while end and _char_script(text[end - 1]) is None:
        end -= 1
    return end


def _cut_near(text: str, target: int) -> int:
    """A word boundary near `target` characters (at least 2 in, never at the very end, never leaving only
    punctuation after it)."""
    candidates = [e for e in _word_ends(text) if 2 <= e < len(text) and _has_speech(text[e:])]
    if not candidates:
        return len(text)
    return min(candidates, key=lambda e: (abs(e - target), e))


def _hard_split(text: str, limit: int) -> list[str]:
    """Split an over-long run at word boundaries."""
    out: list[str] = []
    while len(text) > limit:
        cut = _cut_near(text[: limit + 1], limit)
        if not _has_speech(text[cut:]):  # only the closing punctuation is left: it stays with its words
            break
        out.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        out.append(text)
    return out


def _split_head(clause: str) -> list[str]:
    """Cut a long first clause after its first few words, so its audio can start sooner."""
    kind = "cjk" if _is_cjk_text(clause) else "latin"
    if _length_spoken(clause) <= FIRST_HEAD_SPLIT_OVER[kind]:
        return [clause]
    cut = _cut_near(clause, FIRST_HEAD_TARGET[kind])
    head, tail = clause[:cut].strip(), clause[cut:].strip()
    return [head, tail] if head and _has_speech(tail) else [clause]


def _split_streamed_head(clause: str) -> list[str]:
    """Cut a first clause that streams only when it is longer than FIRST_STREAMED_MAX_CHARS."""
    limit = FIRST_STREAMED_MAX_CHARS["cjk" if _is_cjk_text(clause) else "latin"]
    if _length_spoken(clause) <= limit:
        return [clause]
    cut = _cut_near(clause[: limit + 1], limit)
    head, tail = clause[:cut].strip(), clause[cut:].strip()
    return [head, tail] if head and _has_speech(tail) else [clause]


def split_clauses(text: str, *, first_streams: bool = False) -> list[str]:
    """Clauses in speaking order. Short neighbours are merged, so no clause is a lone word.

    `first_streams`: the engine streams the first clause, so it need not be short (FIRST_STREAMED_MAX_CHARS).
    """
    clauses: list[str] = []
    for sentence in _pieces(text, _SENTENCE_END):
        if clauses and not _has_speech(sentence):  # "?!" or "。。。": the mark stays with the words before it
            clauses[-1] += sentence
            continue
        first_limit = FIRST_CLAUSE_MAX_CHARS
        if first_streams:
            first_limit = FIRST_STREAMED_MAX_CHARS["cjk" if _is_cjk_text(sentence) else "latin"]
        if clauses and spoken_seconds(sentence) < MIN_CLAUSE_SECONDS:
            # A short sentence ("Thanks!", "12") rides with the clause before it when that stays within its
            # limit: every engine call costs a fixed part whatever its length (measured: 0.2-0.8 s), and a
            # lone short call is the one most likely to arrive late.
            limit = first_limit if len(clauses) == 1 else CLAUSE_MAX_CHARS
            joined = f"{clauses[-1]} {sentence}" if _needs_space(clauses[-1], sentence) else clauses[-1] + sentence
            grows_ok = len(clauses) == 1 or spoken_seconds(joined) <= _growth_allowed(clauses[-2])
            if len(joined) <= limit and grows_ok:
                clauses[-1] = joined
                continue
        current = ""
        for piece in _pieces(sentence, _CLAUSE_BREAK):
            limit = first_limit if not clauses else CLAUSE_MAX_CHARS
            # A streamed first clause takes the next piece even past the limit while it is short (it is cut near
            # the limit below): a lone "Sorry," would otherwise wait for the long clause after it.
            short_streamed_first = first_streams and not clauses and len(current) < first_limit // 2
            if current and len(current) + len(piece) > limit and not short_streamed_first:
                clauses.append(current)
                current = piece
            else:
                current = f"{current} {piece}".strip() if current and _needs_space(current, piece) else current + piece
        if current:
            clauses.append(current)
    result: list[str] = []
    for clause in clauses:
        if not result:  # a long first clause: cut its head short, the rest normally
            head, *rest = _split_streamed_head(clause) if first_streams else _split_head(clause)
            result.append(head)
            clause = rest[0] if rest else ""
        result.extend(_hard_split(clause, CLAUSE_MAX_CHARS))
    return _grow_gradually(result)


def spoken_seconds(text: str, lang: str | None = None) -> float:
    """A rough length of the speech: a Chinese or Japanese character is a syllable, Latin letters are faster,
    a digit is a word or more (more in English: `lang` is the language the clause is read in, when known)."""
    cjk = sum(1 for ch in text if _char_script(ch) in ("han", "kana"))
    digits = sum(1 for ch in text if ch.isascii() and ch.isdigit())
    latin = sum(1 for ch in text if _char_script(ch) == "latin") - digits
    per_digit = SECONDS_PER_DIGIT_BY_LANG.get(lang or "", SECONDS_PER_DIGIT)
    return SECONDS_PER_CJK_CHAR * cjk + SECONDS_PER_LATIN_CHAR * latin + per_digit * digits


def _growth_allowed(before: str) -> float:
    """Seconds of speech the clause after `before` may have (see _grow_gradually)."""
    return max(spoken_seconds(before), MIN_CLAUSE_SECONDS) * GROWTH


def _grow_gradually(clauses: list[str]) -> list[str]:
    """Each clause at most GROWTH times as long (spoken) as the one before it.

    Clause k+1 is rendered while clause k plays; at the engine's real-time factor (about
    0.55 on two cores) a clause no more than 1.8 times longer is ready before the one
    before it runs out, so a short first clause does not buy its speed with a gap.
    """
    if not clauses:
        return clauses
    out = [clauses[0]]
    for clause in clauses[1:]:
        while clause:
            allowed = _growth_allowed(out[-1])
            cut = len(clause) if spoken_seconds(clause) <= allowed else _cut_at_seconds(clause, allowed)
            out.append(clause[:cut].strip())
            clause = clause[cut:].strip()
    return out


def _cut_at_seconds(text: str, seconds: float) -> int:
    """The last word boundary whose spoken length fits in `seconds` (at least one word)."""
    ends = [e for e in _word_ends(text) if 0 < e < len(text)]
    fitting = [e for e in ends if spoken_seconds(text[:e]) <= seconds]
    if fitting:
        return max(fitting)
    return min(ends) if ends else len(text)


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
            elif any(ch.isdigit() for ch in current):  # digits alone ("12") are read in the message's language
                runs.append(ScriptRun(current, lang if lang in ("zh", "en", "ja") else "en"))
            return runs
        runs.append(ScriptRun(current, current_lang))
    return runs
