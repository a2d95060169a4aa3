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

from synth.enroll.contract import FIT_CPU_BUDGET_S

SECRET_FILE = "token-secret"


AUTO_ON_OFF = {"auto": None, "on": True, "off": False}


def _auto_on_off(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in AUTO_ON_OFF:
        raise ValueError(f"expected auto, on or off, got {value!r}")
    return lowered


def auto_on_off(value: str) -> bool | None:
    """An auto/on/off setting as the component takes it: None (it decides), True or False."""
    return AUTO_ON_OFF[value]


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
    default_voice: str = ""
    max_text_chars: int = 500
    send_queue_messages: int = 512
    send_buffer_bytes: int = 65536
    heartbeat_s: float = 30.0
    engine_threads: int = 0
    engine_workers: int = 1
    engine_spin: bool = False
    engine_int8_gemm: str = "auto"
    max_active_utterances: int = 64
    max_first_audio_s: float = 1.2
    phrase_cache_mb: int = 32
    models_dir: Path | None = None
    gptsovits_runtime: str = "onnx"
    gptsovits_max_batch: int = 8
    gptsovits_max_tokens: int = 1500
    gptsovits_bert: str = "auto"
    gptsovits_fp16: bool = True
    watermark: bool = True
    voice_key: str = ""
    fit_cpu_s: float = FIT_CPU_BUDGET_S
    fit_layers: bool = True
    enroll_max_mb: int = 32
    enroll_nice: int = 10
    fit_yield: bool = True
    demo: bool = False
    daily_limit: int = 50
    daily_limit_overrides: str = ""
    quota_timezone: str = "UTC"
    blocklist: str = ""
    rate_account: str = "20,1"
    rate_connection: str = "10,0.5"
    redis_prefix: str = "voxroom:"
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
    (
        "default_voice",
        "VOXROOM_DEFAULT_VOICE",
        str,
        "voice used when the sender has none (unset: the engine's first stock voice)",
    ),
    ("max_text_chars", "VOXROOM_MAX_TEXT_CHARS", int, "longest text a `say` may carry"),
    (
        "send_queue_messages",
        "VOXROOM_SEND_QUEUE",
        int,
        "per-connection send queue bound; a client this far behind is dropped",
    ),
    (
        "send_buffer_bytes",
        "VOXROOM_SEND_BUFFER",
        int,
        "socket and transport send buffer per client; past it, the send queue fills",
    ),
    (
        "heartbeat_s",
        "VOXROOM_HEARTBEAT",
        float,
        "seconds between WebSocket pings; a peer that misses the pong is closed (1011)",
    ),
    ("engine_threads", "VOXROOM_ENGINE_THREADS", int, "ONNX Runtime threads per inference session (0 = one per core)"),
    ("engine_workers", "VOXROOM_ENGINE_WORKERS", int, "clauses rendered at once (one inference thread pool slot each)"),
    (
        "engine_spin",
        "VOXROOM_ENGINE_SPIN",
        _bool,
        "ONNX Runtime's idle threads spin for work instead of sleeping (off: measured faster on 2 cores)",
    ),
    (
        "engine_int8_gemm",
        "VOXROOM_ENGINE_INT8_GEMM",
        _auto_on_off,
        "the embedded engine's decoder convolutions as int8 GEMMs (auto: where the CPU has VNNI, about 1.5x "
        "faster, or AVX2, about 1.16x faster with the few weights beyond +-64 rounded to fit)",
    ),
    ("max_active_utterances", "VOXROOM_MAX_ACTIVE", int, "utterances in flight before new ones get `overloaded`"),
    (
        "max_first_audio_s",
        "VOXROOM_MAX_FIRST_AUDIO",
        float,
        "seconds: a message whose first audio is predicted to wait longer than this behind other work (on top of "
        "its own render), or that would make a stream run dry, gets `overloaded` (0: admit by VOXROOM_MAX_ACTIVE "
        "alone)",
    ),
    ("daily_limit", "VOXROOM_DAILY_LIMIT", int, "utterances a day, per sender and per voice owner"),
    (
        "daily_limit_overrides",
        "VOXROOM_DAILY_LIMIT_OVERRIDES",
        str,
        "per-account daily limits, e.g. alice=100,bot-7=500",
    ),
    ("quota_timezone", "VOXROOM_QUOTA_TIMEZONE", str, "IANA time zone whose midnight starts the quota day"),
    ("blocklist", "VOXROOM_BLOCKLIST", str, "block list files (':'-separated), one `term|category` per line"),
    ("rate_account", "VOXROOM_RATE_ACCOUNT", str, "token bucket per account: burst,refill-per-second"),
    ("rate_connection", "VOXROOM_RATE_CONNECTION", str, "token bucket per connection: burst,refill-per-second"),
    ("redis_prefix", "VOXROOM_REDIS_PREFIX", str, "prefix of every Redis key this deployment writes"),
    ("phrase_cache_mb", "VOXROOM_PHRASE_CACHE_MB", int, "in-memory phrase cache size (Redis holds it when configured)"),
    (
        "models_dir",
        "VOXROOM_MODELS_DIR",
        Path,
        "GPT-SoVITS models directory (official layout; see `voxroom models pull`)",
    ),
    ("gptsovits_runtime", "VOXROOM_GPTSOVITS_RUNTIME", str, "GPT-SoVITS runtime: onnx (TensorRT/CUDA/CPU) or torch"),
    ("gptsovits_max_batch", "VOXROOM_GPTSOVITS_MAX_BATCH", int, "GPT-SoVITS: clauses decoded together"),
    (
        "gptsovits_max_tokens",
        "VOXROOM_GPTSOVITS_MAX_TOKENS",
        int,
        "GPT-SoVITS: longest clause in semantic tokens (25 a second)",
    ),
    ("gptsovits_bert", "VOXROOM_GPTSOVITS_BERT", _auto_on_off, "GPT-SoVITS Chinese BERT features: auto, on or off"),
    ("gptsovits_fp16", "VOXROOM_GPTSOVITS_FP16", _bool, "GPT-SoVITS: FP16 on GPU execution providers"),
    (
        "voice_key",
        "VOXROOM_VOICE_KEY",
        str,
        "key wrapping every voice key (64 hex digits or base64 of 32 bytes); unset: a 0600 file in the data dir",
    ),
    ("fit_cpu_s", "VOXROOM_FIT_CPU_S", float, "CPU seconds a voice fit may take"),
    (
        "fit_layers",
        "VOXROOM_FIT_LAYERS",
        _bool,
        "fit a per-layer timbre after the style: nearer the speaker, a little less clean (off: the style alone)",
    ),
    ("enroll_max_mb", "VOXROOM_ENROLL_MAX_MB", int, "largest enrollment upload"),
    (
        "enroll_nice",
        "VOXROOM_ENROLL_NICE",
        int,
        "niceness of the enrollment worker processes, so that synthesis takes the CPU first",
    ),
    (
        "fit_yield",
        "VOXROOM_FIT_YIELD",
        _bool,
        "the fit process waits while the server renders speech, so a fit does not run beside a room's synthesis",
    ),
    ("watermark", "VOXROOM_WATERMARK", _bool, "mark every clause with the inaudible watermark (off is logged loudly)"),
    ("demo", "VOXROOM_DEMO", _bool, "demo mode: the page mints short-lived tokens for a display name"),
    ("log_level", "VOXROOM_LOG_LEVEL", str, "debug, info, warning or error"),
]


# Shorter spellings some flags also answer to.
FLAG_ALIASES = {"models_dir": ["--models"]}
# Other names some variables also answer to (read when the main name is unset).
ENV_ALIASES = {"voice_key": ["VOXROOM_SECRET_KEY"]}  # the deployment key's name in the enrollment spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one --flag per setting; unset flags stay None so the environment can fill them."""
    for name, env, parse, help_text in SETTING_SPECS:
        flags = ["--" + name.replace("_", "-"), *FLAG_ALIASES.get(name, [])]
        env = " or ".join([env, *ENV_ALIASES.get(name, [])])
        if parse is _bool:
            parser.add_argument(
                *flags, dest=name, action="store_const", const=True, default=None, help=f"{help_text} [{env}]"
            )
        else:
            parser.add_argument(*flags, dest=name, type=parse, default=None, help=f"{help_text} [{env}]")


def load_settings(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from flags and environment, and make sure a token secret exists."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, env, parse, _ in SETTING_SPECS:
        flag_value = getattr(args, name, None) if args is not None else None
        env = next((e for e in (env, *ENV_ALIASES.get(name, [])) if environ.get(e)), env)
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
