"""Does a voice fit slow synthesis for the rooms? A real server at 80% of its capacity, with a fit beside it.

The server is first saturated to measure its capacity (as `load.py at80`), then offered the chat mix at
`--share` of it. One voice is enrolled over HTTP, and windows of that traffic take turns: the fit's processes
stopped (SIGSTOP), running as the server runs them (`niced`: niced and, unless `--env VOXROOM_FIT_YIELD=off`,
waiting while the server renders speech), and running in Linux's idle scheduling class (`idle`, SCHED_IDLE,
set on every thread by this script: run it as root). Every kind of window shares
one server, one phrase cache and one fit, and the windows of a group are offered the same messages at the
same moments, so what differs between them is the fit's work on the CPU. The fit is given a budget that
outlasts the run (a fit that ends is followed by another enrollment before the next fitting window).

Per window: first audio p50/p95 at another member, gapped and refused messages (load.py's figures), and the
CPU the enrollment processes got. Summary per kind: medians, the difference from the stopped window of the
same group, the rule of the plan (commit 563258f), and how long a fit of the default budget (240 CPU-s)
would take on the clock at this load.

    python bench/fit_beside_load.py [--groups 3] [--seconds 150] [--classes niced,idle] [--name NAME]
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

from bench.common import RESULTS, machine, write_result  # noqa: E402
from bench.load import (  # noqa: E402
    add_traffic_arguments,
    load_server_env,
    proc_stats,
    rendering_per_message,
    run_level,
    setup_rooms,
)
from voxroom.testing import ServerProcess  # noqa: E402

VOICES = Path(__file__).resolve().parent.parent / "tests" / "data" / "voices"
# English recordings long enough for the quality gate, enrolled in turn as fits end.
RECORDINGS = ["en_1688", "en_3005", "en_3331", "en_367", "en_533"]
FIT_BUDGET_S = 240.0  # the served default (VOXROOM_FIT_CPU_S)
# The fit's budget here: large enough that one fit runs through every window (a fit that ended inside one left
# it with almost no fit to measure). Its steps are the same kind of work as a served fit's, only more of them.
RUN_LONG_FIT_S = "36000"


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

    def set_class(self, *, idle: bool) -> None:
        """Every thread of the enrollment processes in Linux's idle scheduling class, or back in the normal one at
        its niceness (leaving the idle class needs root or CAP_SYS_NICE)."""
        policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
        for pid in self.processes():
            for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
                try:
                    os.sched_setscheduler(int(task.name), policy, os.sched_param(0))
                except ProcessLookupError:
                    continue

    def signal_all(self, signum: int) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                continue


async def window(server: ServerProcess, fit: FitBesideServer, rooms: list[Any], kind: str, rate: float,
                 args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    if kind == "stopped":
        fit.signal_all(signal.SIGSTOP)
    else:
        fit.signal_all(signal.SIGCONT)
        if not await fit.fitting():
            await fit.enroll_next()
        fit.set_class(idle=kind == "idle")
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


def summarise(windows: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    by_kind = {kind: [w for w in windows if w["kind"] == kind] for kind in kinds}

    def median(kind: str, value: Any) -> float:
        return round(statistics.median(value(w) for w in by_kind[kind]), 3)

    summary: dict[str, Any] = {
        kind: {
            "windows": len(rows),
            "ttfa_p50_ms": median(kind, lambda w: w["ttfa"]["p50_ms"]),
            "ttfa_p95_ms": median(kind, lambda w: w["ttfa"]["p95_ms"]),
            "gapped": [w["utterances_with_gaps"] for w in rows],
            "gapped_of_accepted": f"{sum(w['utterances_with_gaps'] for w in rows)}/{sum(w['accepted'] for w in rows)}",
            "windows_with_gaps": sum(w["utterances_with_gaps"] > 0 for w in rows),
            "refused_share": [w["refused_share"] for w in rows],
            "fit_cpu_cores": median(kind, lambda w: w["fit_cpu_cores"]),
            "server_cpu_cores": median(kind, lambda w: w["server_cpu_cores"]),
        }
        for kind, rows in by_kind.items()
    }
    stopped = summary["stopped"]
    stopped_p95 = [w["ttfa"]["p95_ms"] for w in by_kind["stopped"]]
    summary["stopped_p95_spread_ms"] = round(max(stopped_p95) - min(stopped_p95), 1)
    window_of = {(w["group"], w["kind"]): w for w in windows}
    groups = sorted({w["group"] for w in windows})
    for kind in kinds:
        if kind == "stopped":
            continue
        fitting = summary[kind]
        fitting["p95_excess_ms"] = round(fitting["ttfa_p95_ms"] - stopped["ttfa_p95_ms"], 1)
        # The plan's rule (commit 563258f): slower if the p95 excess is past the stopped windows' own spread, or
        # the fitting windows' median gapped or refused count is above every stopped window's.
        fitting["slows_synthesis"] = bool(
            fitting["p95_excess_ms"] > summary["stopped_p95_spread_ms"]
            or statistics.median(fitting["gapped"]) > max(stopped["gapped"])
            or statistics.median(fitting["refused_share"]) > max(stopped["refused_share"])
        )
        # Paired: each group's window of this kind against its stopped window, on the same traffic.
        for figure in ("p50_ms", "p95_ms"):
            differences = [window_of[g, kind]["ttfa"][figure] - window_of[g, "stopped"]["ttfa"][figure]
                           for g in groups]
            fitting[f"paired_{figure}_differences"] = [round(d, 1) for d in differences]
            fitting[f"paired_{figure}_median_difference"] = round(statistics.median(differences), 1)
        cores = fitting["fit_cpu_cores"]
        fitting["fit_wall_s_at_this_load"] = round(FIT_BUDGET_S / cores) if cores > 0 else None
    return summary


async def run(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    kinds = ["stopped", *args.classes.split(",")]
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
        for group in range(args.groups):
            # The order turns from group to group, so that a drift over the run falls on every kind alike.
            order = kinds[group % len(kinds):] + kinds[:group % len(kinds)]
            for kind in order:
                # Every window of a group is offered the same messages at the same moments, so their differences
                # are the fit's and not the traffic's.
                traffic = random.Random(args.seed * 1000 + group)
                windows.append({"group": group, **await window(server, fit, rooms, kind, rate, args, traffic)})
    finally:
        fit.signal_all(signal.SIGCONT)  # a stopped process would hold up the server's shutdown
    for room in rooms:
        for member in room:
            await member.close()
    summary = summarise(windows, kinds)
    print(json.dumps(summary, indent=1), flush=True)
    return {"capacity_rendered_s_per_wall_s": capacity, "offered_msgs_per_s": rate, "voices_enrolled": fit.enrolled,
            "saturated": saturated, "windows": windows, "summary": summary}


def pool(names: list[str], out: str) -> None:
    """Several runs' windows summarised as one run's: each run's groups stay its own (their traffic differs)."""
    runs = {name: json.loads((RESULTS / f"{name}.json").read_text()) for name in names}
    windows = [{**w, "group": f"{name}:{w['group']}"} for name, run in runs.items() for w in run["windows"]]
    kinds = list(dict.fromkeys(w["kind"] for w in windows))
    summary = summarise(windows, ["stopped", *(k for k in kinds if k != "stopped")])
    print(json.dumps(summary, indent=1))
    path = write_result(out, {"benchmark": "fit-beside-load", "pooled": names,
                              "machines": [run["machine"] for run in runs.values()], "summary": summary})
    print("written to", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=3, help="groups of windows, one of each kind")
    parser.add_argument("--classes", default="niced,idle",
                        help="how the fit runs in its windows: niced (as the server runs it) and/or idle (SCHED_IDLE)")
    parser.add_argument("--seconds", type=float, default=150, help="traffic per window")
    add_traffic_arguments(parser)
    parser.add_argument("--name", default="fit_beside_load", help="result file name under bench/results/")
    parser.add_argument("--pool", default=None,
                        help="RUN1,RUN2: no run; the windows of these result files summarised together (as --name)")
    args = parser.parse_args()
    if args.pool:
        pool(args.pool.split(","), args.name)
        return
    env = load_server_env(args, VOXROOM_ENGINE="kokoro", VOXROOM_FIT_CPU_S=RUN_LONG_FIT_S)
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
