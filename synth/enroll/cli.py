"""`voxroom enroll FILE --user NAME`: enroll a recording from the command line, with progress.

Uses the same gate, features and encrypted store as the HTTP upload. It runs only while no
server uses the data dir, and no server starts on it until the command ends (a running server
would not see the voice until its next start, and would share its CPU with the fit); with a
server running, upload through POST /v1/voices.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from synth.audio_io import AudioDecodeError
from synth.enroll.contract import FIT_CPU_BUDGET_S
from synth.enroll.errors import EnrollmentError, RecordingRejected
from synth.enroll.jobs import EnrollmentWorkers
from synth.enroll.service import EnrollmentService
from synth.voicestore import VoiceStore, load_or_create_deployment_key
from voxroom.data_dir import DataDirInUse, hold_for_enrollment

CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".wave": "audio/wav",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".oga": "audio/ogg",
    ".webm": "audio/webm",
    ".mp3": "audio/mpeg",
}
VOICES_SUBDIR = "voices"


def open_service(
    data_dir: Path, voice_key: str = "", fit_cpu_budget_s: float = FIT_CPU_BUDGET_S, fit_per_layer_timbre: bool = True
) -> EnrollmentService:
    """The enrollment service over `<data_dir>/voices`, keyed by the configured or stored deployment key.

    Its worker processes run at the command's own priority: a server's niceness puts synthesis for a room
    first, but no server runs beside this command and its user is waiting for it (run it
    under `nice` to yield to other work)."""
    key = load_or_create_deployment_key(data_dir, voice_key)
    store = VoiceStore(data_dir / VOICES_SUBDIR, key)
    return EnrollmentService(
        store,
        EnrollmentWorkers(niceness=0),
        fit_cpu_budget_s=fit_cpu_budget_s,
        fit_per_layer_timbre=fit_per_layer_timbre,
    )


def enroll_file_command(
    path: str | Path,
    user: str,
    *,
    data_dir: Path,
    voice_key: str = "",
    language: str = "unknown",
    fit_cpu_budget_s: float = FIT_CPU_BUDGET_S,
    fit_per_layer_timbre: bool = True,
    wait: bool = True,
    out: TextIO = sys.stderr,
) -> int:
    """Enroll `path` as `user`'s voice. Returns the process exit code (0 ok, 1 unusable file or a data dir a
    server is using, 2 refused)."""
    path = Path(path)
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        print(f"error: {path.name}: use a .wav, .ogg/.opus, .webm or .mp3 file", file=out)
        return 1
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=out)
        return 1
    try:
        claim = hold_for_enrollment(data_dir)  # before anything is written; no server starts on the dir meanwhile
    except DataDirInUse as exc:
        print(f"error: {exc}", file=out)
        return 1
    with claim:
        service = open_service(data_dir, voice_key, fit_cpu_budget_s, fit_per_layer_timbre)
        return asyncio.run(_enroll(service, data, content_type, user, language, wait, out))


async def _enroll(
    service: EnrollmentService, data: bytes, content_type: str, user: str, language: str, wait: bool, out: TextIO
) -> int:
    shown = _ProgressLine(out)
    try:
        try:
            result = await service.enroll(user, data, content_type, language_hint=language, progress=shown.update)
        except RecordingRejected as exc:
            shown.finish()
            _print_quality(exc.quality, out)
            print("The recording was not enrolled. To fix:", file=out)
            for advice in exc.quality.get("advice", []):
                print(f"  - {advice}", file=out)
            return 2
        except (AudioDecodeError, EnrollmentError) as exc:
            shown.finish()
            print(f"error: {exc}", file=out)
            return 1
        shown.finish()
        _print_quality(result.quality, out)
        print(
            f"Enrolled {user} (version {result.version}); "
            f"starting voice {result.similarity['of']}, similarity {result.similarity['score']:.2f}.",
            file=out,
        )
        if not wait:
            print("The voice fit continues when the server next starts.", file=out)
            return 0
        fit_line = _ProgressLine(out, prefix="fitting")
        while True:
            status = await service.status(user)
            if status["status"] != "fitting":
                break
            fit_line.update(status["progress"]["fraction"], status["progress"]["stage"])
            await asyncio.sleep(0.5)
        fit_line.finish()
        if status["status"] == "failed":
            print(f"{status.get('error', 'The voice fit failed.')} The starting voice stays in use.", file=out)
            return 0
        detail = status["similarity_detail"]
        print(f"Voice ready: similarity {status['similarity']:.2f} (judge cosine {detail['raw']:.3f}).", file=out)
        return 0
    finally:
        await service.close()
        service.workers.close()


def _print_quality(quality: dict[str, Any], out: TextIO) -> None:
    print(
        "quality: {duration_s:.1f} s recorded, {speech_s:.1f} s of speech, SNR {snr_db:.1f} dB, "
        "clipping {clipping_ratio:.2%}, level {level_dbfs:.1f} dBFS -> {verdict}".format(**quality),
        file=out,
    )


class _ProgressLine:
    """One line redrawn in place on a terminal; one line per new stage otherwise."""

    def __init__(self, out: TextIO, prefix: str = "checking") -> None:
        self.out = out
        self.prefix = prefix
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.last_stage = ""
        self.drawn = False

    def update(self, fraction: float, stage: str) -> None:
        bar = "#" * int(20 * fraction)
        if self.tty:
            self.out.write(f"\r{self.prefix} [{bar:<20}] {fraction:4.0%} {stage:<40}")
            self.out.flush()
            self.drawn = True
        elif stage != self.last_stage:
            print(f"{self.prefix}: {fraction:4.0%} {stage}", file=self.out)
        self.last_stage = stage

    def finish(self) -> None:
        if self.tty and self.drawn:
            self.out.write("\n")
            self.out.flush()
            self.drawn = False
