"""An aiortc client that listens to a room over WebRTC, as a browser would: offer, answer, frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


class OfferRefused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


async def post_offer(http: str, token: str | None, body: object) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        data = body if isinstance(body, str) else json.dumps(body)
        async with session.post(f"{http}/v1/rtc/offer", data=data, headers=headers) as response:
            return response.status, await response.json()


class RtcListener:
    """Receives the room's audio track; keeps each frame's RMS and the data channel's JSON messages."""

    def __init__(self, *, with_channel: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("audio", direction="recvonly")
        self.channel = self.pc.createDataChannel("voxroom") if with_channel else None
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.rms: list[float] = []  # one per 20 ms frame received, in order
        self.frame_samples: list[int] = []
        self.frame_pts: list[int] = []  # from the RTP timestamps: the media clock, not the wall clock
        self.track_ended = asyncio.Event()
        self.channel_open = asyncio.Event()
        self.peer_id: str | None = None
        self._reader: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            self._reader = asyncio.get_running_loop().create_task(self._read(track))

        if self.channel is not None:

            @self.channel.on("open")
            def on_open() -> None:
                self.channel_open.set()

            @self.channel.on("message")
            def on_message(message: str | bytes) -> None:
                if isinstance(message, str):
                    self.messages.put_nowait(json.loads(message))

    async def _read(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                samples = frame.to_ndarray().astype(np.float32).reshape(-1) / 32768.0
                self.frame_samples.append(frame.samples)
                self.frame_pts.append(frame.pts)
                self.rms.append(float(np.sqrt(np.mean(samples**2))))
        except MediaStreamError:
            self.track_ended.set()

    async def connect(self, http: str, token: str, room: str) -> dict[str, Any]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription
        status, body = await post_offer(http, token, {"room": room, "sdp": offer.sdp, "type": offer.type})
        if status != 200:
            raise OfferRefused(status, body)
        self.peer_id = body["peer"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
        return body

    async def wait_connected(self, timeout: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.pc.connectionState != "connected":
            if loop.time() > deadline:
                raise TimeoutError(f"still {self.pc.connectionState} after {timeout} s")
            await asyncio.sleep(0.05)

    async def request(self, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        assert self.channel is not None
        await asyncio.wait_for(self.channel_open.wait(), timeout)
        self.channel.send(json.dumps(message))
        return await self.next_message(lambda m: m.get("id") == message.get("id"), timeout)

    async def next_message(self, match: Any, timeout: float = 10.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await asyncio.wait_for(self.messages.get(), max(0.0, deadline - loop.time()))
            if match(message):
                return message

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
