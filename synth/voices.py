"""Which voice a `say` is spoken in: a stock voice, or an account's enrolled voice.

`voice` omitted: the sender's own voice when enrolled and switched on, else the
deployment default. `stock:NAME`: that built-in voice. Anything else: that account's
enrolled voice (consent and grants are the policy layer's to check).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from synth.engines.base import Engine, Voice
from voxroom.errors import ErrorCode, VoxroomError
from voxroom.identity import Account

STOCK_PREFIX = "stock:"

EnrolledVoiceLookup = Callable[[str], Awaitable[Voice | None]]
ConsentLookup = Callable[[str], Awaitable[bool]]


async def _no_enrolled_voice(owner: str) -> Voice | None:
    return None


async def _no_consent(owner: str) -> bool:
    return False


@dataclasses.dataclass(frozen=True)
class ResolvedVoice:
    voice: Voice
    owner: str | None  # None for a stock voice

    @property
    def label(self) -> str:
        return self.voice.id


class VoiceResolver:
    def __init__(
        self,
        engine: Engine,
        default_voice: str,
        *,
        enrolled_voice: EnrolledVoiceLookup = _no_enrolled_voice,
        consent: ConsentLookup = _no_consent,
    ) -> None:
        self.engine = engine
        self.enrolled_voice = enrolled_voice
        self.consent = consent
        default_name = default_voice.removeprefix(STOCK_PREFIX) or engine.stock_voices()[0].name
        self.default = self.stock(default_name)

    def stock(self, name: str) -> Voice:
        try:
            return self.engine.stock_voice(name)
        except KeyError:
            names = ", ".join(STOCK_PREFIX + v.name for v in self.engine.stock_voices())
            raise VoxroomError(ErrorCode.BAD_REQUEST, f"Unknown stock voice {name!r}; choose one of {names}.") from None

    async def resolve(self, requested: str | None, sender: Account) -> ResolvedVoice:
        if requested is None:
            own = await self.enrolled_voice(sender.id)
            if own is not None and await self.consent(sender.id):
                return ResolvedVoice(own, sender.id)
            return ResolvedVoice(self.default, None)
        if requested.startswith(STOCK_PREFIX):
            return ResolvedVoice(self.stock(requested.removeprefix(STOCK_PREFIX)), None)
        voice = await self.enrolled_voice(requested)
        if voice is None:
            raise VoxroomError(ErrorCode.NO_VOICE, f"{requested} has no enrolled voice.")
        return ResolvedVoice(voice, requested)
