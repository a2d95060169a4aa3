"""Mandarin tone changes applied to dictionary readings within a word.

Tones are "1".."5" (5 = neutral). Rules, in order:
- 不: neutral in the middle of three (看不懂, 去不去), second tone before a fourth tone.
- 一: neutral between a repeated verb (看一看), second tone before a fourth tone, fourth tone
  before the others; unchanged in numbers and ordinals (一百, 第一).
- Neutral tone: sentence particles (吧, 呢...), 的/地/得 as particles, the suffixes 们/子 on nouns and
  pronouns, the second of a reduplicated noun/verb/adjective (奶奶, 看看), the measure word 个.
- Third tone: 3-3 -> 2-3 inside the word's sub-words (展览馆 -> 2 2 3, 纸老虎 -> 3 2 3),
  then across their boundary.
"""

from __future__ import annotations

PARTICLES = set("吧呢啊呐噻嘛吖嗯哦哒滴哩哟喽啰耶喔诶")
STRUCTURAL = set("的地得")
NUMERALS = set("零一二三四五六七八九十百千万亿两")
GE_AFTER = set("几有两半多各整每做是") | NUMERALS
KEEP_TONE = {"男子", "女子", "分子", "原子", "量子", "莲子", "石子", "瓜子", "电子", "人人", "虎虎", "孩子们"}


def merge_words(words: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join a lone 不 or 一 to the word after it, so the rules above see the next tone."""
    merged: list[tuple[str, str]] = []
    for word, pos in words:
        if merged and merged[-1][0] in ("不", "一") and word[:1] >= "\u4e00":
            merged[-1] = (merged[-1][0] + word, pos)
        else:
            merged.append((word, pos))
    return merged


def apply(word: str, pos: str, tones: list[str]) -> list[str]:
    tones = list(tones)
    n = len(word)
    repeated_around = n == 3 and word[0] == word[2]
    for i, char in enumerate(word):
        nxt = tones[i + 1] if i + 1 < n else ""
        if char == "不":
            if n == 3 and i == 1:  # 看不懂, 去不去
                tones[i] = "5"
            elif nxt == "4":
                tones[i] = "2"
        elif char == "一" and i > 0 and word[i - 1] == "第":
            tones[i] = "1"  # ordinals keep the first tone (第一名), whatever the dictionary says
        elif char == "一" and not set(word) <= NUMERALS:
            if repeated_around and i == 1:
                tones[i] = "5"
            elif nxt == "4":
                tones[i] = "2"
            elif nxt in ("1", "2", "3"):
                tones[i] = "4"
    _neutral(word, pos, tones)
    _third(word, tones)
    return tones


def _neutral(word: str, pos: str, tones: list[str]) -> None:
    n = len(word)
    if word in KEEP_TONE:
        return
    if word[-1] in PARTICLES or (word[-1] in STRUCTURAL and pos.startswith("u")):
        tones[-1] = "5"
    elif n > 1 and word[-1] in "们子" and pos[:1] in ("r", "n"):
        tones[-1] = "5"
    for i in range(1, n):
        if word[i] == word[i - 1] and pos[:1] in ("n", "v", "a"):
            tones[i] = "5"
    ge = word.find("个")
    if word == "个" or (ge >= 1 and (word[ge - 1].isdigit() or word[ge - 1] in GE_AFTER)):
        tones[max(ge, 0)] = "5"


def _third(word: str, tones: list[str]) -> None:
    n = len(word)
    if n == 3:
        first = _first_subword_length(word)
        if all(t == "3" for t in tones):
            if first == 2:  # 展览/馆
                tones[0] = tones[1] = "2"
            else:  # 纸/老虎
                tones[1] = "2"
            return
        parts = [(0, first), (first, n)]
    elif n == 4:
        parts = [(0, 2), (2, 4)]
    else:
        parts = [(0, n)]
    for start, end in parts:
        for i in range(end - 2, start - 1, -1):
            if tones[i] == "3" and tones[i + 1] == "3":
                tones[i] = "2"
    for (_, end), _part in zip(parts[:-1], parts[1:], strict=True):
        if tones[end - 1] == "3" and tones[end] == "3":
            tones[end - 1] = "2"


def _first_subword_length(word: str) -> int:
    """Where a three-character word splits (2+1 or 1+2): the side holding its shortest sub-word."""
    import jieba

    pieces = sorted((p for p in jieba.cut_for_search(word) if 0 < len(p) < len(word)), key=len)
    if not pieces:
        return 2
    shortest = pieces[0]
    return len(shortest) if word.startswith(shortest) else len(word) - len(shortest)
