"""The content filter: block list terms found with Aho-Corasick in every normalised view of a message.

Block list files hold one term per line, `term|category` (category optional,
`blocked` when left out); blank lines and lines starting with `#` are skipped.
Latin-script terms match whole words only (so "class" never trips on a shorter
term inside it), with an optional plural "s"/"es"; terms in Chinese or other
scripts without spaces match anywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import ahocorasick

from policy.normalize import matching_views, normalize_term, squeeze

DEFAULT_CATEGORY = "blocked"


class BlocklistError(ValueError):
    """A block list file is missing or malformed; raised at start-up with the file and line."""


@dataclasses.dataclass(frozen=True)
class BlockedTerm:
    term: str  # normalised
    category: str
    word_start: bool  # must start at a word boundary (begins with a Latin letter or digit)
    word_end: bool


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def read_blocklist(path: Path) -> list[tuple[str, str]]:
    """(term, category) pairs from one file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise BlocklistError(f"block list {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise BlocklistError(f"block list {path} is not UTF-8 text") from exc
    entries = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        term, _, category = line.partition("|")
        term, category = term.strip(), category.strip() or DEFAULT_CATEGORY
        if not normalize_term(term):
            raise BlocklistError(f"{path}:{number}: empty term")
        entries.append((term, category))
    return entries


class ContentFilter:
    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._automaton = ahocorasick.Automaton()
        self.size = 0
        for term, category in entries:
            normal = normalize_term(term)
            for form in {normal, squeeze(normal)}:
                blocked = BlockedTerm(form, category, _is_word_char(form[0]), _is_word_char(form[-1]))
                self._automaton.add_word(form, blocked)
            self.size += 1
        if self.size:
            self._automaton.make_automaton()

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> ContentFilter:
        entries: list[tuple[str, str]] = []
        for path in paths:
            entries += read_blocklist(Path(path))
        return cls(entries)

    def check(self, text: str) -> str | None:
        """The category of the first blocked term found in `text`, or None when it may be spoken."""
        if not self.size:
            return None
        for view in sorted(matching_views(text)):
            for end, found in self._automaton.iter(view):
                blocked: BlockedTerm = found
                if self._whole_word(view, end - len(blocked.term) + 1, end, blocked):
                    return blocked.category
        return None

    @staticmethod
    def _whole_word(view: str, start: int, end: int, blocked: BlockedTerm) -> bool:
        if blocked.word_start and start > 0 and _is_word_char(view[start - 1]):
            return False
        if not blocked.word_end:
            return True
        rest = view[end + 1:end + 4]
        for suffix in ("", "s", "es"):  # plural forms count as the word
            if rest.startswith(suffix) and (len(rest) == len(suffix) or not _is_word_char(rest[len(suffix)])):
                return True
        return False
