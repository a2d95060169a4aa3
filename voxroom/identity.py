"""Who is asking: the account a verified token names. A leaf module every layer may import."""

from __future__ import annotations

import dataclasses
from typing import Literal

AccountKind = Literal["user", "bot"]


@dataclasses.dataclass(frozen=True)
class Account:
    id: str
    kind: AccountKind = "user"
    # Rooms the token allows; None means any room.
    rooms: frozenset[str] | None = None

    def may_join(self, room: str) -> bool:
        return self.rooms is None or room in self.rooms
