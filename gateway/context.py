"""Everything a request handler needs, built once by the app and passed down."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any

from gateway import protocol
from gateway.auth import TokenAuthority
from policy.service import PolicyService
from rooms.hub import RoomHub
from synth.cache import PhraseCache
from synth.engines.base import Engine
from synth.enroll.service import EnrollmentService
from synth.scheduler import Scheduler
from synth.speech import Speaker
from synth.voices import VoiceResolver
from voxroom.metrics import Metrics
from voxroom.settings import Settings


@dataclasses.dataclass
class ServerContext:
    settings: Settings
    auth: TokenAuthority
    metrics: Metrics
    rooms: RoomHub
    engine: Engine
    scheduler: Scheduler
    speaker: Speaker
    voices: VoiceResolver
    policy: PolicyService
    cache: PhraseCache
    enrollment: EnrollmentService
    watermarker: Any = None  # synth.watermark.Watermarker when marking is on
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Open connections by account id, so events about an account (voice_ready) reach all its clients.
    connections: dict[str, set[Any]] = dataclasses.field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)

    def notify_account(self, account_id: str, message: dict[str, Any]) -> int:
        """Send a JSON event to every open connection of one account; returns how many got it."""
        encoded = protocol.encode(message)
        return sum(1 for conn in list(self.connections.get(account_id, ())) if conn.send(encoded))

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a background task and keep a reference until it ends (so it is not collected)."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
