"""GET /v1/ws: authenticate, then move frames between the socket and the session."""

from __future__ import annotations

import logging
import socket

from aiohttp import WSMsgType, web

from gateway.auth import AuthError, bearer_token
from gateway.connection import ClientConnection
from gateway.context import ServerContext
from gateway.session import Session
from voxroom.errors import CloseCode

log = logging.getLogger(__name__)

CTX_KEY: web.AppKey[ServerContext] = web.AppKey("voxroom_ctx", ServerContext)
# Hard cap enforced by aiohttp (close 1009); the protocol core refuses frames over 16 KiB politely first.
MAX_MESSAGE_BYTES = 1024 * 1024


def _limit_send_buffering(request: web.Request, limit: int) -> None:
    """Keep kernel and transport buffers small, so a client that stops reading backs up into
    our bounded queue within seconds (and is dropped), instead of into megabytes of socket buffer."""
    transport = request.transport
    if transport is None or limit <= 0:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limit)
    transport.set_write_buffer_limits(high=limit)


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    ctx = request.app[CTX_KEY]
    token = request.query.get("token") or bearer_token(request.headers.get("Authorization"))
    # No permessage-deflate: Opus does not compress, and it would cost CPU per listener.
    ws = web.WebSocketResponse(
        heartbeat=ctx.settings.heartbeat_s or None,
        max_msg_size=MAX_MESSAGE_BYTES,
        compress=False,
        writer_limit=max(1024, ctx.settings.send_buffer_bytes),
    )
    await ws.prepare(request)
    _limit_send_buffering(request, ctx.settings.send_buffer_bytes)
    try:
        account = ctx.auth.verify(token)
    except AuthError as exc:
        ctx.metrics.auth_failures.inc()
        log.info("websocket refused: %s", exc)
        await ws.close(code=CloseCode.UNAUTHORIZED, message=b"unauthorized: missing, expired or invalid token")
        return ws

    conn = ClientConnection(ws, account, max_queue=ctx.settings.send_queue_messages, metrics=ctx.metrics)
    session = Session(ctx, conn)
    conn.start()
    ctx.connections.setdefault(account.id, set()).add(conn)
    ctx.metrics.connections.inc()
    log.info("connection %s opened by %s (%s)", conn.conn_id[:8], account.id, account.kind)
    try:
        async for message in ws:
            if conn.closed:
                break
            if message.type == WSMsgType.TEXT:
                await session.handle_text(message.data)
            elif message.type == WSMsgType.BINARY:
                session.handle_binary()
            elif message.type == WSMsgType.ERROR:
                log.info("connection %s: %s", conn.conn_id[:8], ws.exception())
                break
    finally:
        ctx.connections.get(account.id, set()).discard(conn)
        if not ctx.connections.get(account.id):
            ctx.connections.pop(account.id, None)
        session.leave_all()
        await conn.aclose()
        ctx.metrics.connections.dec()
        log.info(
            "connection %s closed (code %s%s)",
            conn.conn_id[:8],
            ws.close_code,
            ", dropped as too slow" if conn.dropped_slow else "",
        )
    return ws
