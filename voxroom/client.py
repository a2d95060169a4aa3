"""A small asyncio client for the Voxroom WebSocket protocol, for host apps, bots, benchmarks and tests.

async with await VoxroomClient.connect("ws://127.0.0.1:8080/v1/ws", token) as client:
    await client.join("lobby")
    accepted = await client.say("lobby", "你好, hello!")
    heard = await client.utterance(accepted["utterance"])   # start, Opus packets, end
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import time
import uuid
from typing import Any

import websockets

FRAME_HEADER_BYTES = 20


class RequestRefused(Exception):
    """The server answered a request with `error`."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error
        self.code = error.get("code")


@dataclasses.dataclass
class HeardUtterance:
    id: str
    start: dict[str, Any] | None = None
    packets: list[bytes] = dataclasses.field(default_factory=list)
    sequences: list[int] = dataclasses.field(default_factory=list)
    end: dict[str, Any] | None = None
    first_frame_at: float | None = None
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class VoxroomClient:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._utterances: dict[str, HeardUtterance] = {}
        self._reader = asyncio.create_task(self._read_loop())
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, token: str, **kwargs: Any) -> VoxroomClient:
        separator = "&" if "?" in url else "?"
        ws = await websockets.connect(f"{url}{separator}token={token}", max_size=2**22, **kwargs)
        return cls(ws)

    async def __aenter__(self) -> VoxroomClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def _heard(self, utterance_id: str) -> HeardUtterance:
        return self._utterances.setdefault(utterance_id, HeardUtterance(utterance_id))

    async def _read_loop(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    utterance_id = str(uuid.UUID(bytes=message[:16]))
                    heard = self._heard(utterance_id)
                    if heard.first_frame_at is None:
                        heard.first_frame_at = time.perf_counter()
                    heard.sequences.append(int.from_bytes(message[16:20], "big"))
                    heard.packets.append(message[FRAME_HEADER_BYTES:])
                    continue
                event = json.loads(message)
                kind = event.get("type")
                if kind == "speech_start":
                    self._heard(event["utterance"]).start = event
                elif kind in ("speech_end", "speech_error"):
                    heard = self._heard(event["utterance"])
                    heard.end = event
                    heard.done.set()
                request_id = event.get("id")
                future = self._pending.pop(request_id, None) if request_id else None
                if future is not None and not future.done():
                    future.set_result(event)
                else:
                    await self.events.put(event)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"connection closed ({self.close_code})"))

    async def request(self, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send a request with a fresh id and wait for the reply that echoes it."""
        request_id = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self.ws.send(json.dumps({**message, "id": request_id}))
        reply = await asyncio.wait_for(future, timeout)
        if reply.get("type") == "error":
            raise RequestRefused(reply)
        return reply

    async def join(self, room: str) -> dict[str, Any]:
        return await self.request({"type": "join", "room": room})

    async def leave(self, room: str) -> dict[str, Any]:
        return await self.request({"type": "leave", "room": room})

    async def say(self, room: str, text: str, *, voice: str | None = None, lang: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "say", "room": room, "text": text}
        if voice is not None:
            message["voice"] = voice
        if lang is not None:
            message["lang"] = lang
        return await self.request(message)

    async def ping(self) -> dict[str, Any]:
        return await self.request({"type": "ping"})

    async def utterance(self, utterance_id: str, timeout: float = 60.0) -> HeardUtterance:
        """Wait until speech_end (or speech_error) of this utterance has arrived."""
        heard = self._heard(utterance_id)
        await asyncio.wait_for(heard.done.wait(), timeout)
        return heard

    async def next_event(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        """The next unsolicited event of this type (others before it are dropped)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            event = await asyncio.wait_for(self.events.get(), max(0.0, remaining))
            if event.get("type") == kind:
                return event
