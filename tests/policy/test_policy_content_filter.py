"""The content filter: evasions of a test block list are caught, ordinary chat is never blocked."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_helpers import ALICE, say

from policy.content_filter import BlocklistError, ContentFilter
from policy.service import PolicyService
from voxroom.errors import ErrorCode, VoxroomError

BLOCKLIST = Path(__file__).parents[1] / "data" / "blocklist_test.txt"


@pytest.fixture(scope="module")
def content_filter() -> ContentFilter:
    return ContentFilter.from_files([BLOCKLIST])


EVASIONS = [
    ("plain", "you are an idiot", "insult"),
    ("plain Chinese", "你真是个傻瓜", "insult"),
    ("upper case", "YOU ARE AN IDIOT", "insult"),
    ("full width Latin", "ｙｏｕ ｉｄｉｏｔ", "insult"),
    ("full width upper case", "ＳＴＵＰＩＤ", "insult"),
    ("Traditional Chinese", "你這個白癡", "insult"),
    ("Traditional placeholder", "禁語測試", "test"),
    ("zero-width space inside Latin", "id\u200biot", "insult"),
    ("zero-width joiner between CJK", "笨\u200d蛋", "insult"),
    ("word joiner and BOM between CJK", "傻\u2060\ufeff瓜", "insult"),
    ("space between CJK", "你是 傻 瓜", "insult"),
    ("every CJK character spaced out", "禁 语 测 试", "test"),
    ("one space inside a CJK word", "他是傻 瓜", "insult"),
    ("full-width space between CJK", "笨\u3000蛋", "insult"),
    ("symbols between CJK", "白*痴 和 蓝.莓.怪.兽", "insult"),
    ("letters spaced out", "what an i d i o t", "insult"),
    ("letters dotted", "s.t.u.p.i.d", "insult"),
    ("symbol inside a word", "id.iot", "insult"),
    ("repeated letters", "stuuuuuupid", "insult"),
    ("repeated letters in a term with a double letter", "doooofus", "insult"),
    ("repeated CJK characters", "傻傻傻瓜瓜", "insult"),
    ("digits for letters", "1d10t", "insult"),
    ("digits and trailing punctuation", "m0r0n!", "insult"),
    ("symbol for a letter", "$tupid", "insult"),
    ("1 read as l", "zorb1eflux", "test"),
    ("Cyrillic look-alikes", "іdіоt", "insult"),
    ("accents", "ídíót", "insult"),
    ("plural", "idiots everywhere", "insult"),
    ("inside Chinese text without spaces", "你是idiot吗", "insult"),
    ("placeholder term", "the snargleblat is here", "test"),
]


@pytest.mark.parametrize(("technique", "text", "category"), EVASIONS, ids=[e[0] for e in EVASIONS])
def test_evasions_are_caught(content_filter: ContentFilter, technique: str, text: str, category: str) -> None:
    assert content_filter.check(text) == category, technique


ORDINARY_LINES = [
    # English
    "hey everyone, how's it going?",
    "good morning! did you sleep well?",
    "I'll be there at 5:30, save me a seat",
    "the meeting moved to room 101",
    "can someone share the link again?",
    "that was a classic move, well played",
    "lol that's hilarious",
    "sooooo good, I loved it",
    "hahaha no way",
    "what's the idiom for that again?",
    "the results were stupendous this quarter",
    "I need to buy some doughnuts on the way home",
    "my 4k monitor arrived today",
    "send me the mp3 when you can",
    "call me at 555-1234 after lunch",
    "@bob are you joining the call?",
    "check example.com/docs for the details",
    "A B C, easy as 1 2 3",
    "it's 2026 already, time flies",
    "brb grabbing coffee",
    "gg everyone, see you tomorrow",
    "I think the moon looks amazing tonight",
    "the morning train was late again",
    "we scored 3-1 in the final!",
    "don't forget to water the plants",
    "I'm not sure, let me think about it",
    "happy birthday!!! 🎉",
    "can you hear me? my mic is acting up",
    "the studio is booked until 8 p.m.",
    "Thanks a lot, that helps!",
    # Chinese
    "大家好，今天过得怎么样？",
    "我们明天下午三点见",
    "哈哈哈哈，笑死我了",
    "谢谢谢谢，太感谢了",
    "这个西瓜很甜",
    "我傻了，瓜子真好吃",
    "笨鸟先飞，我先走了",
    "他笨笨的，蛋挞倒是很好吃",
    "白天很热，晚上凉快",
    "看到这个消息我都傻眼了",
    "晚上一起吃饭吗？",
    "会议改到周五了",
    "我刚到家，马上上线",
    "这首歌真好听",
    "周末去爬山吧",
    "你说的对，我同意",
    "等一下，我去倒杯水",
    "今天的天气真不错",
    "我們今天說好了，明天見",
    "ＯＫ，沒問題",
    "这个蓝莓蛋糕很好吃",
    "我家的猫又把杯子打翻了",
    "一二三，开始！",
    "麦克风好像有点问题",
    "我们 3 点在门口集合",
    "这部电影太精彩了",
    "明天记得带伞",
    "加油加油！",
    "蛋白质很重要",
    "我真傻 瓜子呢",
    "太笨 蛋糕呢",
    "好的好的，马上来",
]


def test_ordinary_chat_is_never_blocked(content_filter: ContentFilter) -> None:
    assert len(ORDINARY_LINES) >= 60
    blocked = [line for line in ORDINARY_LINES if content_filter.check(line) is not None]
    assert blocked == []


def test_an_empty_list_blocks_nothing() -> None:
    assert ContentFilter([]).check("idiot 傻瓜") is None


def test_a_term_without_a_category_is_blocked_as_blocked(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("# comment\n\nflorbix\n", encoding="utf-8")
    assert ContentFilter.from_files([path]).check("a florbix here") == "blocked"


def test_block_list_problems_are_explained(tmp_path: Path) -> None:
    with pytest.raises(BlocklistError, match="does not exist"):
        ContentFilter.from_files([tmp_path / "missing.txt"])
    empty = tmp_path / "empty-term.txt"
    empty.write_text("ok|test\n|insult\n", encoding="utf-8")
    with pytest.raises(BlocklistError, match="empty-term.txt:2"):
        ContentFilter.from_files([empty])
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(BlocklistError, match="not UTF-8"):
        ContentFilter.from_files([binary])


async def test_blocked_text_is_refused_with_its_category_and_not_charged(service: PolicyService) -> None:
    await service.set_consent("alice", True)
    with pytest.raises(VoxroomError) as caught:
        await say(service, ALICE, text="you 傻 瓜")
    assert caught.value.code == ErrorCode.CONTENT_BLOCKED
    assert caught.value.details == {"category": "insult"}
    assert "(insult)" in caught.value.message
    assert (await service.quota_for("alice")).used == 0
