"""In-process rooms: membership and fan-out of the same bytes to every member.

A member is anything with a non-blocking `send(item) -> bool`; a member whose
queue is full drops itself (the gateway closes it with 4008), so a broadcast never
waits for anyone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

from voxroom.identity import Account


class Member(Protocol):
    conn_id: str
    account: Account

    def send(self, item: str | bytes) -> bool:
        """Queue `item` without waiting; False when the member is gone or too slow."""


@dataclasses.dataclass
class Room:
    name: str
    members: dict[str, Member] = dataclasses.field(default_factory=dict)

    def roster(self) -> list[dict[str, str]]:
        """One entry per account (an account may be connected more than once)."""
        seen: dict[str, str] = {}
        for member in self.members.values():
            seen.setdefault(member.account.id, member.account.kind)
        return [{"account": account, "kind": kind} for account, kind in sorted(seen.items())]

    def has_account(self, account_id: str) -> bool:
        return any(m.account.id == account_id for m in self.members.values())


class RoomHub:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def join(self, room_name: str, member: Member) -> Room:
        room = self._rooms.setdefault(room_name, Room(room_name))
        room.members[member.conn_id] = member
        return room

    def leave(self, room_name: str, conn_id: str) -> Room | None:
        """Remove one connection; returns the room (possibly now empty) or None if it was not there."""
        room = self._rooms.get(room_name)
        if room is None or room.members.pop(conn_id, None) is None:
            return None
        if not room.members:
            del self._rooms[room_name]
        return room

    def get(self, room_name: str) -> Room | None:
        return self._rooms.get(room_name)

    def is_active(self, room_name: str) -> bool:
        return room_name in self._rooms

    def broadcast(self, room_name: str, item: str | bytes, *, exclude: str | None = None) -> int:
        """Queue the same object to every member; returns how many accepted it."""
        room = self._rooms.get(room_name)
        if room is None:
            return 0
        delivered = 0
        # Copy: a member that drops itself leaves the room during the loop.
        for conn_id, member in list(room.members.items()):
            if conn_id != exclude and member.send(item):
                delivered += 1
        return delivered

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))

    def __len__(self) -> int:
        return len(self._rooms)
