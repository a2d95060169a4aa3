"""One client connection's outgoing side: a bounded queue and the task that drains it.

`send()` never waits. When the queue is full the client is too slow: it is dropped
with close code 4008 and every later send to it is a no-op, so rooms never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from aiohttp import web

from gateway import protocol
from voxroom.errors import CloseCode
from voxroom.identity import Account
from voxroom.metrics import Metrics

log = logging.getLogger(__name__)

# How long a dropped client has to read its close frame (4008) before the socket is cut.
CLOSE_TIMEOUT_S = 10.0


class ClientConnection:
    def __init__(self, ws: web.WebSocketResponse, account: Account, *, max_queue: int, metrics: Metrics) -> None:
        self.conn_id = uuid.uuid4().hex
        self.account = account
        self.state = protocol.ConnectionState()
        self._ws = ws
        self._metrics = metrics
        self._queue: asyncio.Queue[str | bytes] = asyncio.Queue(maxsize=max_queue)
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self.closed = False
        self.dropped_slow = False

    # ---- sending, never waiting --------------------------------------------------------

    def send(self, item: str | bytes) -> bool:
        if self.closed:
            return False
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drop_slow()
            return False
        return True

    def send_message(self, message: dict[str, Any]) -> bool:
        return self.send(protocol.encode(message))

    # ---- the writer task ---------------------------------------------------------------

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.conn_id[:8]}")

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, bytes):
                    await self._ws.send_bytes(item)
                else:
                    await self._ws.send_str(item)
        except (ConnectionResetError, RuntimeError) as exc:  # the peer went away mid-write
            log.debug("connection %s: write failed: %s", self.conn_id[:8], exc)
            self.closed = True

    def _drop_slow(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.dropped_slow = True
        self._metrics.slow_client_drops.inc()
        log.warning("connection %s (%s) fell behind; closing with 4008", self.conn_id[:8], self.account.id)
        self._closer = asyncio.create_task(self._close(CloseCode.TOO_SLOW, b"too slow: fell behind the room"))

    async def _close(self, code: int, message: bytes) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        try:
            await asyncio.wait_for(self._ws.close(code=code, message=message), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionResetError, RuntimeError):
            # The peer is not reading at all: its socket buffer is full, so cut it.
            transport = self._ws._req.transport if self._ws._req is not None else None  # noqa: SLF001
            if transport is not None:
                transport.abort()

    async def aclose(self) -> None:
        """Stop writing (the socket is already closing or closed)."""
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer
