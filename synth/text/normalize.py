"""Make typed chat text speakable: spell out what G2P would misread, drop what should be silent.

The G2Ps already read plain numbers (misaki through cn2an for Chinese, gruut for
English); this module handles what they get wrong in chat: emoji, URLs, dates and
times written with digits, long digit strings (phone numbers, codes), and
symbols that have a spoken form.
"""

from __future__ import annotations

import re
import unicodedata

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
# Digit lookarounds rather than \b: in Chinese "在2024" has no word boundary.
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])")
_LONG_DIGITS = re.compile(r"\d{5,}")
_SPACES = re.compile(r"\s+")
_REPEATED_PUNCT = re.compile(r"([!?！？。.,，~～])\1+")

_HAN = re.compile(r"[\u3400-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")

# Symbols with a spoken form, per language of the surrounding text.
_SYMBOLS = {
    "zh": {"&": "和", "+": "加", "=": "等于", "@": "艾特", "#": "井号", "~": "到", "～": "到", "°": "度"},
    "en": {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number ", "°": " degrees "},
    "ja": {"&": "と", "+": "プラス", "=": "イコール", "@": "アット", "#": "ナンバー", "°": "度"},
}
_ZH_DIGITS = "零一二三四五六七八九"
_JA_DIGITS = "〇一二三四五六七八九"
_EN_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _is_emoji_or_symbol(ch: str) -> bool:
    if ch in "\u200d\ufe0f\ufe0e\u20e3":  # joiners and variation selectors inside emoji sequences
        return True
    category = unicodedata.category(ch)
    code = ord(ch)
    return category == "So" or 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF


def dominant_language(text: str) -> str:
    """A guess good enough to pick spoken forms: kana means Japanese, Han means Chinese."""
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    return "en"


def _spell_digits(digits: str, lang: str) -> str:
    if lang == "zh":
        return "".join(_ZH_DIGITS[int(d)] for d in digits)
    if lang == "ja":
        return "".join(_JA_DIGITS[int(d)] for d in digits)
    return " ".join(_EN_DIGITS[int(d)] for d in digits)


def normalize_text(text: str, lang: str | None = None) -> str:
    """Return speakable text; empty when nothing in it can be spoken."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    lang = lang or dominant_language(text)
    link_word = {"zh": "链接", "ja": "リンク"}.get(lang, "link")
    text = _URL.sub(f" {link_word} ", text)
    text = _EMAIL.sub(f" {link_word} ", text)
    if lang == "zh":
        text = _ISO_DATE.sub(lambda m: f"{int(m[1])}年{int(m[2])}月{int(m[3])}日", text)
        text = _TIME.sub(lambda m: f"{int(m[1])}点" + (f"{int(m[2])}分" if int(m[2]) else ""), text)
    elif lang == "ja":
        text = _ISO_DATE.sub(lambda m: f"{int(m[1])}年{int(m[2])}月{int(m[3])}日", text)
        text = _TIME.sub(lambda m: f"{int(m[1])}時" + (f"{int(m[2])}分" if int(m[2]) else ""), text)
    text = _LONG_DIGITS.sub(lambda m: " " + _spell_digits(m[0], lang) + " ", text)
    text = "".join(" " if _is_emoji_or_symbol(ch) else ch for ch in text)
    for symbol, spoken in _SYMBOLS[lang].items():
        text = text.replace(symbol, spoken)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip()
    if not any(ch.isalnum() for ch in text):
        return ""
    return text
