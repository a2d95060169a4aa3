"""Text to clauses to phonemes: what the engine is asked to read."""

from __future__ import annotations

import pytest

from synth.speech import plan_clauses
from synth.text.g2p import G2P, english_to_misaki
from synth.text.normalize import dominant_language, normalize_text
from synth.text.segment import GROWTH, MIN_CLAUSE_SECONDS, split_clauses, split_script_runs, spoken_seconds
from voxroom.errors import ErrorCode, VoxroomError


def test_language_guess() -> None:
    assert dominant_language("你好") == "zh"
    assert dominant_language("こんにちは世界") == "ja"
    assert dominant_language("hello") == "en"


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("会议在2024-05-03 14:30开始😀", "zh", "会议在2024年5月3日 14点30分开始"),
        ("see https://example.com/x now", "en", "see link now"),
        ("call 13800138000", "en", "call one three eight zero zero one three eight zero zero zero"),
        ("电话13800138000", "zh", "电话 一三八零零一三八零零零"),
        ("A & B", "en", "A and B"),
        ("太好了！！！", "zh", "太好了!"),
        ("👍👍", "en", ""),
        ("\u200bhi\u200b", "en", "hi"),
    ],
)
def test_normalisation(text: str, lang: str, expected: str) -> None:
    assert normalize_text(text, lang) == expected


def test_first_clause_is_short_and_later_ones_merge() -> None:
    assert split_clauses("你好,今天天气很好。我们去公园吧!") == ["你好,", "今天天气很好。", "我们去公园吧!"]
    assert split_clauses("Hello there, how are you doing today? I am fine.") == [
        "Hello there,",
        "how are you doing today?",
        "I am fine.",
    ]
    long_first = split_clauses("This is a long sentence without any punctuation at all that goes on and on")
    assert long_first[0] == "This is a long" and " ".join(long_first).endswith("goes on and on")


def test_a_streamed_first_clause_is_a_whole_short_sentence() -> None:
    assert split_clauses("Can you hear me clearly now?", first_streams=True) == ["Can you hear me clearly now?"]
    assert split_clauses("哈哈，这个太好笑了", first_streams=True) == ["哈哈，这个太好笑了"]
    assert split_clauses("你好,今天天气很好。我们去公园吧!", first_streams=True) == [
        "你好,今天天气很好。",
        "我们去公园吧!",
    ]
    # A short piece takes the long one after it, cut near the limit: no lone "Sorry," first.
    text = "Sorry, my connection dropped for a second."
    sorry = split_clauses(text, first_streams=True)
    assert sorry[0] == "Sorry, my connection dropped" and " ".join(sorry) == text
    # Longer than about 2 s of speech: cut at a word boundary near the limit, the rest grows from there.
    long_zh = "今天我们一起去北京大学参观了图书馆和博物馆然后吃了午饭下午又去了颐和园玩得非常开心"
    clauses = split_clauses(long_zh, first_streams=True)
    assert 7 <= len(clauses[0]) <= 10 and "".join(clauses) == long_zh
    long_en = "This is a long sentence without any punctuation at all that goes on and on and on"
    clauses = split_clauses(long_en, first_streams=True)
    assert 20 <= len(clauses[0]) <= 30 and " ".join(clauses) == long_en


def test_closing_punctuation_is_never_a_clause_of_its_own() -> None:
    # Eleven characters with the question mark, ten spoken: under the streamed limit, one clause.
    assert split_clauses("周末一起去爬山怎么样?", first_streams=True) == ["周末一起去爬山怎么样?"]
    texts = ("周末一起去爬山怎么样?!", "我觉得这个方案还需要再讨论一下。", "Good morning all, how was your weekend?")
    for text in texts:
        for first_streams in (False, True):
            clauses = split_clauses(text, first_streams=first_streams)
            assert all(any(ch.isalnum() for ch in clause) for clause in clauses), clauses


def test_a_short_sentence_rides_with_the_clause_before_it() -> None:
    # One engine call instead of two: each call has a fixed cost, whatever its length.
    assert split_clauses("Thanks! See you.", first_streams=True) == ["Thanks! See you."]
    assert split_clauses("See you in five minutes. 12", first_streams=True) == ["See you in five minutes. 12"]
    assert split_clauses("晚饭想吃什么？火锅还是烤肉？ 好吗？") == ["晚饭想吃什么？", "火锅还是烤肉？好吗？"]
    # Not past a clause's limit, nor past what may follow the clause before it (see _grow_gradually).
    over_limit = split_clauses("Can you hear me clearly now? 12", first_streams=True)
    assert over_limit == ["Can you hear me clearly now?", "12"]
    assert split_clauses("Hello there, how are you doing today? I am fine.")[-1] == "I am fine."


def test_digits_count_as_words_in_the_predicted_length() -> None:
    assert spoken_seconds("263") > spoken_seconds("ok") * 3  # 二百六十三
    assert spoken_seconds("263", "en") > spoken_seconds("263", "zh")  # "two hundred and sixty-three"
    assert spoken_seconds("好的", "en") == spoken_seconds("好的")  # only digits are read differently


def test_a_clause_of_digits_alone_is_spoken_in_the_message_language() -> None:
    g2p = G2P()
    assert [(r.lang, r.text) for r in split_script_runs("12", "zh")] == [("zh", "12")]
    assert any(arrow in g2p.phonemize("12", "zh") for arrow in "↓↗↘→")  # shí'èr, with tones
    assert "twˈɛlv" in g2p.phonemize("12", "en")
    assert g2p.phonemize("462", "ja")
    assert split_script_runs("。!", "zh") == []  # punctuation alone still says nothing


@pytest.mark.parametrize(
    "text",
    [
        "今天我们一起去北京大学参观了图书馆和博物馆然后吃了午饭下午又去了颐和园玩得非常开心",
        "This is a long sentence without any punctuation at all that goes on and on and on",
        "我觉得这个方案还需要再讨论一下。",
    ],
)
def test_clauses_grow_gradually_so_each_is_ready_before_the_last_runs_out(text: str) -> None:
    clauses = split_clauses(text)
    assert len(clauses) >= 3
    for before, after in zip(clauses, clauses[1:], strict=False):
        allowed = max(spoken_seconds(before), MIN_CLAUSE_SECONDS) * GROWTH
        assert spoken_seconds(after) <= allowed + 1e-9, (before, after)
    # Chinese without breaks is cut at a word boundary (jieba), never inside a word.
    zh = split_clauses("明天早上九点在公司门口见面吧")
    assert zh[0] == "明天早上" and "".join(zh) == "明天早上九点在公司门口见面吧"
    long_zh = "今天我们一起去北京大学参观了图书馆和博物馆然后吃了午饭下午又去了颐和园玩得非常开心"
    assert "".join(split_clauses(long_zh)) == long_zh
    assert split_clauses("ok") == ["ok"] and split_clauses("好的") == ["好的"]


def test_script_runs_split_mixed_text() -> None:
    runs = split_script_runs("我用iPhone 15拍的,OK吗", "zh")
    assert [(r.lang, r.text.strip()) for r in runs] == [
        ("zh", "我用"),
        ("en", "iPhone 15"),
        ("zh", "拍的,"),
        ("en", "OK"),
        ("zh", "吗"),
    ]
    assert [r.lang for r in split_script_runs("3个苹果", "zh")] == ["zh"]
    assert {r.lang for r in split_script_runs("今日は晴れ", "ja")} == {"ja"}  # kanji read as Japanese here


def test_english_phonemes_use_kokoro_symbols() -> None:
    phonemes = english_to_misaki("I go, they play.")
    assert "I" in phonemes and "O" in phonemes and "A" in phonemes  # aɪ, oʊ, eɪ diphthongs
    assert "," in phonemes and phonemes.endswith(".")
    assert "ɡ" in english_to_misaki("go") and "ʤ" in english_to_misaki("jump")


def test_chinese_phonemes_keep_tones_and_mixed_text_uses_both_g2ps() -> None:
    g2p = G2P()
    zh = g2p.phonemize("你好", "zh")
    assert any(arrow in zh for arrow in "↓↗↘→")
    mixed = g2p.phonemize("我用iPhone", "zh")
    assert any(arrow in mixed for arrow in "↓↗↘→") and "ˈ" in mixed


def test_plan_refuses_text_with_nothing_speakable() -> None:
    with pytest.raises(VoxroomError) as info:
        plan_clauses("🎉🎉🎉")
    assert info.value.code is ErrorCode.BAD_REQUEST
    clauses = plan_clauses("ok 好的", "auto")
    assert clauses and clauses[0].lang == "zh"
