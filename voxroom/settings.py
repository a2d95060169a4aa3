"""One frozen settings object, built once at start-up from CLI flags and VOXROOM_* variables.

No other module reads the environment: everything it needs arrives in `Settings`.
Precedence: CLI flag > environment variable > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SECRET_FILE = "token-secret"


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected on/off, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    secret: str = ""
    data_dir: Path = Path("voxroom-data")
    redis_url: str = ""
    engine: str = "kokoro"
    default_voice: str = "stock:jf_alpha"
    max_text_chars: int = 500
    send_queue_messages: int = 512
    engine_threads: int = 0
    demo: bool = False
    log_level: str = "info"

    @property
    def embedded(self) -> bool:
        """True when nothing outside this process is needed (no Redis)."""
        return not self.redis_url


# (field, env var, parser, help) for every setting; the CLI flags and the README table come from here.
SETTING_SPECS: list[tuple[str, str, Any, str]] = [
    ("host", "VOXROOM_HOST", str, "address to listen on"),
    ("port", "VOXROOM_PORT", int, "port for WebSocket, HTTP API, demo page and metrics"),
    ("secret", "VOXROOM_SECRET", str, "HS256 token key; generated into the data dir on first run when unset"),
    ("data_dir", "VOXROOM_DATA_DIR", Path, "where voices, keys and logs are kept"),
    ("redis_url", "VOXROOM_REDIS_URL", str, "Redis URL for shared state; unset = embedded in-memory default"),
    ("engine", "VOXROOM_ENGINE", str, "synthesis engine name"),
    ("default_voice", "VOXROOM_DEFAULT_VOICE", str, "voice used when the sender has none"),
    ("max_text_chars", "VOXROOM_MAX_TEXT_CHARS", int, "longest text a `say` may carry"),
    ("send_queue_messages", "VOXROOM_SEND_QUEUE", int, "per-connection send queue bound; a client this far behind is dropped"),
    ("engine_threads", "VOXROOM_ENGINE_THREADS", int, "ONNX Runtime threads per inference session (0 = one per core)"),
    ("demo", "VOXROOM_DEMO", _bool, "demo mode: the page mints short-lived tokens for a display name"),
    ("log_level", "VOXROOM_LOG_LEVEL", str, "debug, info, warning or error"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one --flag per setting; unset flags stay None so the environment can fill them."""
    for name, env, parse, help_text in SETTING_SPECS:
        flag = "--" + name.replace("_", "-")
        if parse is _bool:
            parser.add_argument(flag, action="store_const", const=True, default=None, help=f"{help_text} [{env}]")
        else:
            parser.add_argument(flag, type=parse, default=None, help=f"{help_text} [{env}]")


def load_settings(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from flags and environment, and make sure a token secret exists."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, env, parse, _ in SETTING_SPECS:
        flag_value = getattr(args, name, None) if args is not None else None
        if flag_value is not None:
            values[name] = flag_value
        elif environ.get(env):
            try:
                values[name] = parse(environ[env])
            except ValueError as exc:
                raise SystemExit(f"{env}: {exc}") from exc
    settings = Settings(**values)
    if not settings.secret:
        settings = dataclasses.replace(settings, secret=_load_or_create_secret(settings.data_dir))
    return settings


def _load_or_create_secret(data_dir: Path) -> str:
    """The deployment's token key: read from the data dir, or created there with mode 0600."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
