import pytest

from synth.engines.gptsovits.frontend import (
    FrontendError,
    phonemize,
    phones_to_ids,
    split_syllable,
    symbol_ids,
    symbols,
)


def test_symbol_table_is_the_v2_table() -> None:
    table = symbols()
    assert len(table) == 732 and len(set(table)) == 732
    # sorted base symbols, then the Japanese pitch marks, Korean jamo, Cantonese (Y-prefixed) finals
    assert table[:5] == ["!", ",", "-", ".", "?"] and table[321:324] == ["…", "[", "]"] and table[-1] == "Yz"
    ids = symbol_ids()
    assert (ids["SP"], ids["UNK"], ids[","]) == (77, 86, 1)


@pytest.mark.parametrize(
    ("syllable", "expected"),
    [("a", ("AA", "a")), ("er", ("EE", "er")), ("ou", ("OO", "ou")), ("yan", ("y", "En")), ("ye", ("y", "E")),
     ("yu", ("y", "v")), ("yuan", ("y", "van")), ("wu", ("w", "u")), ("zhi", ("zh", "ir")),
     ("si", ("s", "i0")),
     ("ju", ("j", "v")), ("xue", ("x", "ve")), ("gui", ("g", "ui")), ("lv", ("l", "v"))],
)  # fmt: skip
def test_pinyin_splits_like_the_symbol_table(syllable: str, expected: tuple[str, str]) -> None:
    assert split_syllable(syllable) == expected


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("你好，世界。我们一起去买雨伞！", "zh"),
        ("Hello world, this is a test.", "en"),
        ("こんにちは、世界。", "ja"),
    ],
)
def test_every_language_maps_onto_known_symbols(text: str, lang: str) -> None:
    phones = phonemize(text, lang)
    assert len(phones) > 5
    assert symbol_ids()["UNK"] not in phones_to_ids(phones)


def test_japanese_carries_pitch_accent_marks() -> None:
    assert phonemize("こんにちは。", "ja") == ["k", "o", "[", "N", "n", "i", "ch", "i", "w", "a", "."]
    phones = phonemize("今日はいい天気ですね！", "ja")
    assert "]" in phones and phones[-1] == "!"
    # Accent-phrase borders are not in the v2 table: written UNK, as the model saw them in training.
    assert "UNK" in phones and all(p in symbol_ids() for p in phones)


def test_tone_sandhi_and_english_stress() -> None:
    assert phonemize("你好", "zh") == ["n", "i2", "h", "ao3"]  # 3-3 -> 2-3
    assert phonemize("不是", "zh")[:2] == ["b", "u2"]
    assert "OW1" in phonemize("hello", "en")


def test_unspeakable_text_and_unknown_language_are_refused() -> None:
    with pytest.raises(FrontendError):
        phonemize("。。！", "zh")
    with pytest.raises(FrontendError, match="not 'ko'"):
        phonemize("안녕", "ko")


@pytest.mark.parametrize(
    ("text", "tones"),
    [
        ("不对", "24"),  # 不 before a fourth tone, joined to the next word first
        ("看不懂", "453"),
        ("一样", "24"),
        ("一天", "41"),
        ("看一看", "454"),
        ("第一名", "412"),
        ("展览馆", "223"),  # 2+1 word
        ("纸老虎", "323"),  # 1+2 word
        ("奶奶", "35"),
        ("我们", "35"),
        ("好吧", "35"),
    ],
)
def test_tone_sandhi(text: str, tones: str) -> None:
    assert "".join(p[-1] for p in phonemize(text, "zh") if p[-1].isdigit()) == tones


def test_texts_end_with_a_mark_as_in_official_inference() -> None:
    from synth.engines.gptsovits.frontend import end_with_punctuation

    assert end_with_punctuation(" 你好 ", "zh") == "你好。"
    assert end_with_punctuation("Hello", "en") == "Hello."
    assert end_with_punctuation("好吗？", "zh") == "好吗？"
