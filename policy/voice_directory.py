"""What the policy layer needs to know about enrolled voices, and nothing more."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class VoiceDirectory(Protocol):
    async def has_voice(self, owner: str) -> bool:
        """True when `owner` has an enrolled voice that can be spoken in."""
        ...


class StaticVoiceDirectory:
    """A set of owners kept in memory: for tests, benchmarks and setups without enrollment."""

    def __init__(self, owners: Iterable[str] = ()) -> None:
        self.owners = set(owners)

    async def has_voice(self, owner: str) -> bool:
        return owner in self.owners
