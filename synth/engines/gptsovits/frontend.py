"""Text -> phone symbols of the v2 symbol table (732 entries, in `symbols_v2.txt`).

- Chinese: jieba words, pypinyin readings, tone sandhi (tone_sandhi.py), then each
  syllable split into the table's initial + toned final (zero-initial syllables take the
  table's AA/EE/OO/y/w initials; zi/ci/si -> i0, zhi/chi/shi/ri -> ir, j/q/x + u -> v).
- English: gruut's lexicon and guesser (IPA) mapped onto the table's ARPAbet with stress.
- Japanese: OpenJTalk phonemes with pitch-accent marks [ and ], as the v2 model was trained.
Punctuation becomes the table's , . ! ? … - marks. BERT features are not computed here:
the caller passes zeros unless a BERT model was supplied.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from synth.engines.gptsovits import tone_sandhi

PUNCTUATION = {
    "，": ",", "、": ",", "；": ",", "：": ",", ";": ",", ":": ",", ",": ",",
    "。": ".", ".": ".", "！": "!", "!": "!", "？": "?", "?": "?",
    "…": "…", "~": "…", "～": "…", "—": "-", "-": "-",
}  # fmt: skip


class FrontendError(ValueError):
    """Text that yields no speakable phones, or a language this backend does not speak."""


@functools.cache
def symbols() -> list[str]:
    text = resources.files("synth.engines.gptsovits").joinpath("symbols_v2.txt").read_text(encoding="utf-8")
    return text.rstrip("\n").split("\n")


@functools.cache
def symbol_ids() -> dict[str, int]:
    return {s: i for i, s in enumerate(symbols())}


def phones_to_ids(phones: list[str]) -> list[int]:
    table = symbol_ids()
    return [table.get(p, table["UNK"]) for p in phones]


def end_with_punctuation(text: str, lang: str) -> str:
    """Texts and transcripts end with a mark, as in the official inference ("。", or "." for English)."""
    text = text.strip()
    if text and text[-1] not in PUNCTUATION:
        text += "." if lang == "en" else "。"
    return text


def phonemize(text: str, lang: str) -> list[str]:
    return phonemize_aligned(text, lang)[0]


def phonemize_aligned(text: str, lang: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Phones, and which character each run of phones came from: [(char, n_phones), ...].

    The character is "" for phones that no single Chinese character produced (English words,
    Japanese text); BERT features for those phones are zeros.
    """
    if lang == "zh":
        phones, units = _chinese(text)
    elif lang == "en":
        phones = _english(text)
        units = [("", len(phones))]
    elif lang == "ja":
        phones = _japanese(text)
        units = [("", len(phones))]
    else:
        raise FrontendError(f"GPT-SoVITS v2 speaks zh, en and ja, not {lang!r}")
    if not any(p not in PUNCTUATION.values() for p in phones):
        raise FrontendError(f"nothing speakable in {text!r}")
    return phones, units


# --- Chinese -----------------------------------------------------------------------------

_INITIALS = (
    "zh",
    "ch",
    "sh",
    "b",
    "p",
    "m",
    "f",
    "d",
    "t",
    "n",
    "l",
    "g",
    "k",
    "h",
    "j",
    "q",
    "x",
    "r",
    "z",
    "c",
    "s",
)
_Y_FINALS = {"an": "En", "e": "E", "u": "v", "uan": "van", "ue": "ve", "un": "vn"}


def split_syllable(syllable: str) -> tuple[str, str]:
    """Toneless pinyin (v for ü) -> (initial, final) as spelled in the symbol table."""
    s = syllable.replace("ü", "v")
    if s[0] in "aeo":
        return {"a": "AA", "e": "EE", "o": "OO"}[s[0]], s
    if s[0] == "y":
        rest = "u" + s[2:] if s[1:2] == "v" else s[1:]
        return "y", rest if rest.startswith("i") else _Y_FINALS.get(rest, rest)
    if s[0] == "w":
        return "w", s[1:]
    for initial in _INITIALS:
        if s.startswith(initial):
            final = s[len(initial) :]
            if initial in ("j", "q", "x") and final.startswith("u"):
                final = "v" + final[1:]
            if final == "i" and initial in ("z", "c", "s"):
                final = "i0"
            elif final == "i" and initial in ("zh", "ch", "sh", "r"):
                final = "ir"
            return initial, final
    raise FrontendError(f"not a pinyin syllable: {syllable!r}")


def _chinese(text: str) -> tuple[list[str], list[tuple[str, int]]]:
    import jieba  # imported here: loading its dictionary takes a moment
    import jieba.posseg
    from pypinyin import Style, lazy_pinyin

    jieba.setLogLevel(60)
    phones: list[str] = []
    units: list[tuple[str, int]] = []
    for word, pos in tone_sandhi.merge_words([(w, p) for w, p in jieba.posseg.lcut(text)]):
        if word in PUNCTUATION:
            phones.append(PUNCTUATION[word])
            units.append((PUNCTUATION[word], 1))  # BERT reads the normalised mark
            continue
        hanzi = "".join(ch for ch in word if "\u4e00" <= ch <= "\u9fff")
        if not hanzi:
            if re.search(r"[A-Za-z]", word):
                english = _english(word)
                phones += english
                units.append(("", len(english)))
            continue
        readings = lazy_pinyin(hanzi, style=Style.TONE3, neutral_tone_with_five=True)
        tones = tone_sandhi.apply(hanzi, pos, [r[-1] for r in readings])
        for char, reading, tone in zip(hanzi, readings, tones, strict=True):
            initial, final = split_syllable(reading[:-1])
            phones += [initial, final + tone]
            units.append((char, 2))
    return phones, units


# --- English -----------------------------------------------------------------------------

_IPA_TO_ARPA = {
    "ɑ": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɔ": "AO", "aʊ": "AW", "aɪ": "AY", "ɛ": "EH", "ɚ": "ER",
    "ɝ": "ER", "eɪ": "EY", "ɪ": "IH", "ɨ": "IH", "i": "IY", "oʊ": "OW", "ɔɪ": "OY", "ʊ": "UH", "u": "UW",
    "b": "B", "t͡ʃ": "CH", "d": "D", "ð": "DH", "f": "F", "ɡ": "G", "g": "G", "h": "HH", "d͡ʒ": "JH",
    "k": "K", "l": "L", "m": "M", "n": "N", "ŋ": "NG", "p": "P", "ɹ": "R", "r": "R", "s": "S", "ʃ": "SH",
    "t": "T", "θ": "TH", "v": "V", "w": "W", "j": "Y", "z": "Z", "ʒ": "ZH", "ɾ": "T", "ʔ": "T", "l̩": "L",
    "n̩": "N", "m̩": "M", "ɐ": "AH", "o": "OW", "e": "EY", "a": "AA",
}  # fmt: skip
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def _arpa(ipa: str) -> str | None:
    stress = "1" if "ˈ" in ipa else "2" if "ˌ" in ipa else "0"
    core = ipa.replace("ˈ", "").replace("ˌ", "").replace("ː", "")
    arpa = _IPA_TO_ARPA.get(core)
    if arpa is None:
        return None
    return arpa + stress if arpa in _VOWELS else arpa


def _english(text: str) -> list[str]:
    import gruut

    phones: list[str] = []
    for sentence in gruut.sentences(text, lang="en-us"):
        for word in sentence:
            if word.is_break or word.is_punctuation:
                mark = PUNCTUATION.get(word.text)
                if mark and (not phones or phones[-1] != mark):
                    phones.append(mark)
                continue
            for ipa in word.phonemes or []:
                arpa = _arpa(ipa)
                if arpa is not None:
                    phones.append(arpa)
    return phones


# --- Japanese ----------------------------------------------------------------------------
#
# As the v2 model was trained: OpenJTalk phonemes with pitch-accent marks between them,
# "[" where the pitch rises and "]" where it falls (the accent-phrase border and pause
# marks of that scheme are not in the v2 table, so they become UNK, as in training).
# Devoiced vowels are written as voiced ones.

_JA_SPLIT = re.compile(r"([、。，．！？!?,.…~～\s]+)")


def _label_number(pattern: str, label: str) -> int:
    found = re.search(pattern, label)
    return int(found.group(1)) if found else -50


def _japanese_prosody(sentence: str) -> list[str]:
    import pyopenjtalk

    labels = pyopenjtalk.make_label(pyopenjtalk.run_frontend(sentence))
    phones: list[str] = []
    for n, label in enumerate(labels):
        found = re.search(r"-(.*?)\+", label)
        phoneme = found.group(1) if found else "sil"
        if phoneme == "sil":
            continue
        if phoneme == "pau":
            phones.append("UNK")
            continue
        phones.append(phoneme.lower() if phoneme in "AEIOU" else phoneme)
        if n + 1 >= len(labels):
            continue
        a1 = _label_number(r"/A:([0-9\-]+)\+", label)
        a2 = _label_number(r"\+(\d+)\+", label)
        a3 = _label_number(r"\+(\d+)/", label)
        moras = _label_number(r"/F:(\d+)_", label)
        a2_next = _label_number(r"\+(\d+)\+", labels[n + 1])
        if a3 == 1 and a2_next == 1 and phoneme in "aeiouAEIOUNcl":
            phones.append("UNK")  # accent-phrase border
        elif a1 == 0 and a2_next == a2 + 1 and a2 != moras:
            phones.append("]")
        elif a2 == 1 and a2_next == 2:
            phones.append("[")
    return phones


def _japanese(text: str) -> list[str]:
    phones: list[str] = []
    for piece in _JA_SPLIT.split(text):
        if not piece:
            continue
        if _JA_SPLIT.fullmatch(piece):
            marks = [PUNCTUATION[ch] for ch in piece if ch in PUNCTUATION]
            if marks and phones:
                phones.append(marks[0])
        else:
            phones += _japanese_prosody(piece)
    return phones
