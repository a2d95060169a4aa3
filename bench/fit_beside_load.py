"""Does a voice fit slow synthesis for the rooms? A real server at 80% of its capacity, with a fit beside it.

The server is first saturated to measure its capacity (as `load.py at80`), then offered the chat mix at
`--share` of it. One voice is enrolled over HTTP, and windows of that traffic alternate (stopped, fitting,
fitting, stopped, ...) between the fit process running and the fit process stopped with SIGSTOP: both kinds
of window share one server, one phrase cache and one fit, so what differs between them is the fit's work on
the CPU. A fit that ends is followed by another enrollment before the next fitting window.

Per window: first audio p50/p95 at another member, gapped and refused messages (load.py's figures), and the
CPU the enrollment processes got. Summary: medians per kind of window, the spread between the stopped ones,
and how long a fit of the default budget (240 CPU-s) would take on the clock at this load.

    python bench/fit_beside_load.py [--pairs 3] [--seconds 150] [--env VOXROOM_ENROLL_NICE=19] [--name NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402
from bench.load import proc_stats, rendering_per_message, run_level, setup_rooms  # noqa: E402
from voxroom.testing import ServerProcess  # noqa: E402

VOICES = Path(__file__).resolve().parent.parent / "tests" / "data" / "voices"
# English recordings long enough for the quality gate, enrolled in turn as fits end.
RECORDINGS = ["en_1688", "en_3005", "en_3331", "en_367", "en_533"]
FIT_BUDGET_S = 240.0  # the served default (VOXROOM_FIT_BUDGET)


def child_pids(parent: int) -> set[int]:
    """Direct children of `parent`, from /proc (the server runs its engine in-process: its children are the
    enrollment processes and multiprocessing's resource tracker, which uses no CPU)."""
    children = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                children.add(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return children


class FitBesideServer:
    """Enrolls voices on the server one after another and stops or resumes their enrollment processes."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.enrolled = 0
        self.user = "fit-owner"

    def _request(self, method: str, path: str, data: bytes | None = None, content_type: str = "") -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.server.token(self.user)}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.server.http + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from exc

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/v1/voices/me")

    async def enroll_next(self) -> None:
        """Enroll the next recording (replacing the voice before it) and wait until its fit is past loading."""
        name = RECORDINGS[self.enrolled % len(RECORDINGS)]
        self.enrolled += 1
        recording = (VOICES / f"{name}_enroll.wav").read_bytes()
        started = time.perf_counter()
        await asyncio.to_thread(self._request, "POST", "/v1/voices?lang=en", recording, "audio/wav")
        while True:
            state = await asyncio.to_thread(self.status)
            if state["status"] != "fitting" or state["progress"]["fraction"] > 0:
                break
            await asyncio.sleep(1.0)
        print(f"enrolled {name} ({time.perf_counter() - started:.0f} s to its fit's first progress)", flush=True)

    async def fitting(self) -> bool:
        return (await asyncio.to_thread(self.status))["status"] == "fitting"

    def processes(self) -> set[int]:
        return child_pids(self.server.process.pid)

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self.processes():
            try:
                total += proc_stats(pid)[0]
            except OSError:  # ended meanwhile
                continue
        return total

    def signal_all(self, signum: int) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                continue


async def window(server: ServerProcess, fit: FitBesideServer, rooms: list[Any], kind: str, rate: float,
                 args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    if kind == "fitting":
        fit.signal_all(signal.SIGCONT)
        if not await fit.fitting():
            await fit.enroll_next()
    else:
        fit.signal_all(signal.SIGSTOP)
    cpu0, started = fit.cpu_s(), time.perf_counter()
    level = await run_level(server, rooms, rate, args.seconds, args.repeat_rate, rng)
    wall = time.perf_counter() - started
    level["kind"] = kind
    level["wall_s"] = round(wall, 1)
    # Cores the enrollment processes used over the window, its drain included (0 while stopped).
    level["fit_cpu_cores"] = round((fit.cpu_s() - cpu0) / wall, 3)
    level["refused_share"] = round(1 - level["accepted"] / max(1, level["sent"]), 3)
    print(f"{kind}:", json.dumps({k: level[k] for k in ("ttfa", "accepted", "sent", "utterances_with_gaps",
                                                         "fit_cpu_cores", "server_cpu_cores")}), flush=True)
    return level


def summarise(windows: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind = {kind: [w for w in windows if w["kind"] == kind] for kind in ("stopped", "fitting")}

    def median(kind: str, value: Any) -> float:
        return round(statistics.median(value(w) for w in by_kind[kind]), 3)

    stopped_p95 = [w["ttfa"]["p95_ms"] for w in by_kind["stopped"]]
    summary: dict[str, Any] = {
        kind: {
            "windows": len(rows),
            "ttfa_p50_ms": median(kind, lambda w: w["ttfa"]["p50_ms"]),
            "ttfa_p95_ms": median(kind, lambda w: w["ttfa"]["p95_ms"]),
            "gapped": [w["utterances_with_gaps"] for w in rows],
            "refused_share": [w["refused_share"] for w in rows],
            "fit_cpu_cores": median(kind, lambda w: w["fit_cpu_cores"]),
            "server_cpu_cores": median(kind, lambda w: w["server_cpu_cores"]),
        }
        for kind, rows in by_kind.items()
    }
    fitting, stopped = summary["fitting"], summary["stopped"]
    p95_excess = fitting["ttfa_p95_ms"] - stopped["ttfa_p95_ms"]
    stopped_spread = max(stopped_p95) - min(stopped_p95)
    # The plan's rule (commit 563258f): slower if the p95 excess is past the stopped windows' own spread, or the
    # fitting windows' median gapped or refused count is above every stopped window's.
    summary["p95_excess_ms"] = round(p95_excess, 1)
    summary["stopped_p95_spread_ms"] = round(stopped_spread, 1)
    summary["fit_slows_synthesis"] = bool(
        p95_excess > stopped_spread
        or statistics.median(fitting["gapped"]) > max(stopped["gapped"])
        or statistics.median(fitting["refused_share"]) > max(stopped["refused_share"])
    )
    cores = fitting["fit_cpu_cores"]
    summary["fit_wall_s_at_this_load"] = round(FIT_BUDGET_S / cores) if cores > 0 else None
    return summary


async def run(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    rooms = await setup_rooms(server, args.rooms, args.members)
    fit = FitBesideServer(server)
    try:
        # The first enrollment loads the fit's models (outside any window), then the fit is stopped while the
        # server's capacity is measured.
        await fit.enroll_next()
        fit.signal_all(signal.SIGSTOP)
        saturated = await run_level(server, rooms, args.saturate_rate, args.saturate_seconds, args.repeat_rate, rng)
        capacity = saturated["rendered_s_per_wall_s"]
        rate = round(args.share * capacity / rendering_per_message(saturated, args.repeat_rate), 3)
        print(f"capacity {capacity} rendered audio-s/s: offering {rate} msg/s", flush=True)
        windows = []
        for pair in range(args.pairs):
            order = ("stopped", "fitting") if pair % 2 == 0 else ("fitting", "stopped")
            for kind in order:
                windows.append(await window(server, fit, rooms, kind, rate, args, rng))
    finally:
        fit.signal_all(signal.SIGCONT)  # a stopped process would hold up the server's shutdown
    for room in rooms:
        for member in room:
            await member.close()
    summary = summarise(windows)
    print(json.dumps(summary, indent=1), flush=True)
    return {"capacity_rendered_s_per_wall_s": capacity, "offered_msgs_per_s": rate, "voices_enrolled": fit.enrolled,
            "saturated": saturated, "windows": windows, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="pairs of windows, one stopped and one fitting each")
    parser.add_argument("--seconds", type=float, default=150, help="traffic per window")
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--repeat-rate", type=float, default=0.35, help="share of short repeated replies")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--saturate-rate", type=float, default=3.0, help="messages per second to saturate")
    parser.add_argument("--saturate-seconds", type=float, default=90)
    parser.add_argument("--share", type=float, default=0.8, help="share of capacity to offer")
    parser.add_argument("--env", action="append", default=[], help="extra server setting NAME=VALUE")
    parser.add_argument("--name", default="fit_beside_load", help="result file name under bench/results/")
    args = parser.parse_args()
    env = {"VOXROOM_ENGINE": "kokoro", "VOXROOM_DAILY_LIMIT": "1000000", "VOXROOM_RATE_ACCOUNT": "1000,1000",
           "VOXROOM_RATE_CONNECTION": "1000,1000", "VOXROOM_SEND_QUEUE": "4096", "VOXROOM_MAX_ACTIVE": "32"}
    env.update(dict(item.split("=", 1) for item in args.env))
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(Path(data_dir), env=env)
        try:
            result = asyncio.run(run(server, args))
        finally:
            server.stop()
    path = write_result(args.name, {"benchmark": "fit-beside-load", "machine": machine(), "args": vars(args),
                                    **result})
    print("written to", path)


if __name__ == "__main__":
    main()
