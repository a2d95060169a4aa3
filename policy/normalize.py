"""Text normalisation for the content filter: undo the usual ways people dodge a block list.

`matching_views(text)` returns a few normalised forms of one message; the filter
looks for its terms in each. Several views rather than one, because each undoing
step can also create false matches, and a view per step keeps those steps apart:

- every view: NFKC (full-width and compatibility forms), case folding, accents and
  zero-width/format characters removed, Traditional to Simplified Chinese (OpenCC
  t2s), Cyrillic/Greek look-alike letters mapped to Latin;
- letter-spaced words joined ("i d i o t", "i.d.i.o.t");
- separators between CJK characters removed ("傻 瓜", "傻*瓜"); clause punctuation
  (， 。 , ! ? and the like) is kept, and so is a space between two longer runs,
  so two clauses never merge into a term;
- with digit and symbol substitutions undone, in words that also hold letters
  ("1d10t", "$tupid"), in two readings of "1" and "!" (i or l);
- with symbols inside a word removed ("id.iot", "stu*pid");
- with repeated characters squeezed to one ("stuuupid", "傻傻瓜"); the block list
  terms are squeezed the same way (see `squeeze`).
"""

from __future__ import annotations

import functools
import re
import unicodedata

import opencc

# Letters from other scripts that look like Latin ones.
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x",
})

# Digits and symbols standing in for letters, in two readings where one is ambiguous.
_LEET_I = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
           "@": "a", "$": "s", "!": "i", "|": "i", "+": "t", "€": "e"}
_LEET_L = {**_LEET_I, "1": "l", "!": "l", "|": "l"}
_LEET_SYMBOLS = "@$!|+€"

# Characters that pad out a word or sit between CJK characters without meaning anything.
_FILLERS = "\u3164\u115f\u1160\uffa0\u2800"  # Hangul fillers, braille blank
_SEPARATOR_CLASS = r"[\s.\-_*~^`'\"·•|/\\+=#&%$@<>()\[\]{}「」『』【】〔〕《》〈〉…‧・]"

_CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"
_CJK_SEPARATORS = re.compile(rf"(?<={_CJK}){_SEPARATOR_CLASS}+(?={_CJK})")
_CJK_CHAR = re.compile(_CJK)
_SPACED_LETTERS = re.compile(r"(?<![a-z0-9])(?:[a-z0-9][\s.\-_*·•|/+]+){2,}[a-z0-9](?![a-z0-9])")
_SPACING = re.compile(r"[\s.\-_*·•|/+]+")
_INTRAWORD_SYMBOLS = re.compile(r"(?<=[a-z0-9])[.\-_*~^`'\"·•|/\\#]+(?=[a-z0-9])")
_LEET_TOKEN = re.compile(r"[a-z0-9@$!|+€]+")
_REPEATS = re.compile(r"(.)\1+", re.DOTALL)


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def fold(text: str) -> str:
    """The steps every view shares: width, case, accents, invisible characters, script variants."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(
        ch for ch in text
        if unicodedata.category(ch) not in ("Mn", "Me", "Cf") and ch not in _FILLERS
    )
    text = unicodedata.normalize("NFC", text)
    simplified: str = _t2s().convert(text)
    return simplified.translate(_HOMOGLYPHS)


def squeeze(text: str) -> str:
    return _REPEATS.sub(r"\1", text)


def _drop_cjk_separators(text: str) -> str:
    """Remove separators between CJK characters ("傻 瓜", "傻*瓜").

    Symbols always go. Plain spaces go only next to a lone character, the way an
    evasion spaces out a word; a space between two longer runs is how some people
    separate clauses ("我真傻 瓜子呢"), and joining those would invent terms.
    """

    def replace(match: re.Match[str]) -> str:
        if not match.group(0).isspace():
            return ""
        # The characters on either side are CJK (the pattern says so); is the one beyond too?
        start, end = match.start(), match.end()
        long_before = start >= 2 and _CJK_CHAR.match(text, start - 2) is not None
        long_after = _CJK_CHAR.match(text, end + 1) is not None
        return match.group(0) if long_before and long_after else ""

    return _CJK_SEPARATORS.sub(replace, text)


def _join_spaced_letters(text: str) -> str:
    return _SPACED_LETTERS.sub(lambda m: _SPACING.sub("", m.group(0)), text)


def _undo_leet(text: str, table: dict[str, str]) -> str:
    def word(match: re.Match[str]) -> str:
        token = match.group(0)
        if not any("a" <= ch <= "z" for ch in token):
            return token  # plain numbers stay numbers
        out = []
        for i, ch in enumerate(token):
            # A symbol counts as a letter only inside a word: "idiot!" keeps its "!".
            if ch in _LEET_SYMBOLS and (i + 1 == len(token) or token[i + 1] in _LEET_SYMBOLS):
                out.append(ch)
            else:
                out.append(table.get(ch, ch))
        return "".join(out)

    return _LEET_TOKEN.sub(word, text)


def matching_views(text: str) -> set[str]:
    base = _drop_cjk_separators(_join_spaced_letters(fold(text)))
    views = {base, _undo_leet(base, _LEET_I), _undo_leet(base, _LEET_L)}
    views |= {_INTRAWORD_SYMBOLS.sub("", view) for view in views}
    views |= {squeeze(view) for view in views}
    return views


def normalize_term(term: str) -> str:
    """A block list term in the form the views use (squeezed forms are added separately)."""
    return _drop_cjk_separators(fold(term.strip()))

