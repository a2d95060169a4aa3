"""Load benchmark: real WebSocket clients on loopback against a real server.

Mode `ramp` (default): N rooms x M members; senders type a realistic chat mix (short
replies and sentences, Chinese and English, a configurable share of repeated short
replies) at increasing offered load. Per level: time to first audio p50/p95/p99 at
another member, audio seconds produced per wall second, gaps inside utterances (a frame
later than its play time with a 200 ms jitter buffer), server CPU and RSS, phrase-cache
hit rate, errors by code.

Mode `fanout`: one room, one speaker, 10 to 1,000 listeners; a 10-second utterance; every
listener must receive every frame in order; server CPU per listener-frame. It runs the
fake engine by default (its compute is a sleep), so the CPU measured is fan-out and Opus
encoding, not synthesis.

Mode `soak`: one level for a long time; RSS sampled every 10 s (memory growth).

Mode `at80`: first saturate the server (offered load well past what it can render) to
measure its capacity: the engine's rendered audio seconds per wall second. Then offer
the chat mix at the rate whose rendering work is 80% of that, for `--seconds`, and report
the same figures and the share of capacity actually rendered. The work per offered
message is estimated per kind (sentence, short reply) from the saturated phase, weighted
by the mix: the messages accepted when saturated are not the mix (cached replies are never
refused, uncached sentences often are), and sizing the rate from them offered more than
the whole capacity.

    python bench/load.py ramp --rooms 4 --members 3 --levels 0.25,0.5,1,2 --seconds 40
    python bench/load.py fanout --listeners 10,100,300,1000
    python bench/load.py soak --rate 0.5 --minutes 30
    python bench/load.py at80 --seconds 180
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import websockets  # noqa: E402

from bench.common import machine, scrape_metrics, summary_ms, write_result  # noqa: E402
from voxroom.testing import ServerProcess  # noqa: E402

SHORT_REPLIES = ["好的", "哈哈", "在吗", "谢谢", "ok", "lol", "嗯嗯", "thanks", "收到", "yes"]
SENTENCES_ZH = [
    "我马上就到，等我一下。",
    "今天的会议改到下午三点了。",
    "周末一起去爬山怎么样？",
    "晚饭想吃什么？火锅还是烤肉？",
    "这首歌真好听，能把名字发给我吗",
    "我觉得这个方案还需要再讨论一下。",
]
SENTENCES_EN = [
    "See you in five minutes.",
    "Can you hear me clearly now?",
    "Sorry, my connection dropped for a second.",
    "I just sent you the file, please check.",
    "Good morning everyone, how was your weekend?",
    "Let's meet at the station tomorrow.",
]
JITTER_BUFFER_S = 0.2
# Numbers new sentences across all levels and windows, so a sentence is never repeated by accident
# (repeats come only from the short replies, at --repeat-rate).
MESSAGE_COUNTER = itertools.count(1)


def chat_message(rng: random.Random, repeat_rate: float, counter: int) -> str:
    if rng.random() < repeat_rate:
        return rng.choice(SHORT_REPLIES)
    sentence = rng.choice(SENTENCES_ZH if rng.random() < 0.5 else SENTENCES_EN)
    return f"{sentence} {counter}"  # a number makes it new text: uncached


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss_pages = int(open(f"/proc/{pid}/statm").read().split()[1])
    return cpu, rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Member:
    """One connected account: records what it hears, per utterance."""

    def __init__(self, ws: Any, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
        self.ends: dict[str, dict[str, Any]] = {}
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        try:
            async for message in self.ws:
                now = time.perf_counter()
                if isinstance(message, bytes):
                    utterance = str(uuid.UUID(bytes=message[:16]))
                    self.frames[utterance].append((int.from_bytes(message[16:20], "big"), now))
                    continue
                event = json.loads(message)
                if event.get("type") in ("speech_end", "speech_error"):
                    self.ends[event["utterance"]] = event
                future = self.replies.pop(event.get("id", ""), None)
                if future is not None and not future.done():
                    future.set_result(event)
        except websockets.ConnectionClosed:
            pass

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        request_id = uuid.uuid4().hex[:12]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[request_id] = future
        await self.ws.send(json.dumps({**message, "id": request_id}))
        return await asyncio.wait_for(future, 60)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


async def connect(server: ServerProcess, name: str) -> Member:
    ws = await websockets.connect(f"{server.ws_url}?token={server.token(name)}", max_size=2**22, ping_interval=None)
    return Member(ws, name)


def utterance_gaps(frames: list[tuple[int, float]]) -> tuple[bool, float, int | None]:
    """(gap?, worst lateness s, the first late frame): frame k is due at first arrival + buffer + 20 ms * k."""
    if not frames:
        return False, 0.0, None
    start = frames[0][1] + JITTER_BUFFER_S
    late = [(arrival - (start + 0.02 * seq), seq) for seq, arrival in frames]
    lateness = max(x for x, _ in late)
    first_late = next((seq for x, seq in late if x > 0), None)
    return lateness > 0, max(0.0, lateness), first_late


async def run_level(server: ServerProcess, rooms: list[list[Member]], rate: float, seconds: float,
                    repeat_rate: float, rng: random.Random) -> dict[str, Any]:
    pid = server.process.pid
    before_metrics = scrape_metrics(server.http)
    cpu0, _ = proc_stats(pid)
    started = time.perf_counter()
    sent: list[tuple[Member, Member, str, float, asyncio.Task[dict[str, Any]]]] = []
    next_at = started
    while time.perf_counter() - started < seconds:
        next_at += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        room = rng.choice(rooms)
        speaker, listener = rng.sample(room, 2)
        text = chat_message(rng, repeat_rate, next(MESSAGE_COUNTER))
        task = asyncio.create_task(speaker.request({"type": "say", "room": room_name(rooms, room), "text": text}))
        sent.append((speaker, listener, text, time.perf_counter(), task))
    # Let accepted utterances finish (bounded).
    drain_deadline = time.perf_counter() + 90
    replies = await asyncio.gather(*(t for *_, t in sent), return_exceptions=True)
    accepted = [(s, reply) for s, reply in zip(sent, replies, strict=True)
                if isinstance(reply, dict) and reply.get("type") == "accepted"]
    while time.perf_counter() < drain_deadline and any(r["utterance"] not in s[1].ends for s, r in accepted):
        await asyncio.sleep(0.2)
    wall = time.perf_counter() - started
    cpu1, rss = proc_stats(pid)
    after_metrics = scrape_metrics(server.http)
    errors = collections.Counter(
        reply.get("code", "?") if isinstance(reply, dict) else type(reply).__name__
        for reply in replies if not (isinstance(reply, dict) and reply.get("type") == "accepted")
    )
    ttfa, gaps, audio_ms, worst_late = [], 0, 0, 0.0
    by_kind: dict[str, dict[str, float]] = {kind: {"sent": 0, "accepted": 0, "audio_s": 0.0}
                                            for kind in ("sentence", "reply")}
    for _speaker, _listener, text, _sent_at, _ in sent:
        by_kind[message_kind(text)]["sent"] += 1
    gap_details = []  # where each gap starts: tells a late continuation from a late rest of the first clause
    for (_speaker, listener, text, sent_at, _), reply in accepted:
        utterance = reply["utterance"]
        frames = listener.frames.get(utterance, [])
        end = listener.ends.get(utterance)
        if frames:
            ttfa.append(frames[0][1] - sent_at)
        if end and end.get("type") == "speech_end":
            audio_ms += end["duration_ms"]
            kind = by_kind[message_kind(text)]
            kind["accepted"] += 1
            kind["audio_s"] += end["duration_ms"] / 1000
            gap, late, first_late = utterance_gaps(frames)
            gaps += gap
            worst_late = max(worst_late, late)
            if gap:
                gap_details.append({"text": text, "frames": end["frames"], "first_late_frame": first_late,
                                    "late_ms": round(late * 1000, 1)})
        elif end is None:
            errors["unfinished"] += 1
        else:
            errors[f"speech_error:{end.get('code')}"] += 1

    def delta(name: str) -> float:
        return after_metrics.get(name, 0.0) - before_metrics.get(name, 0.0)

    def mispredicted(kind: str) -> dict[str, float] | None:
        """Engine calls of this kind, and the share that took longer than predicted (by more than 0.25 s). The
        histogram has negative buckets, so the client library exports no sum: the shares come from the buckets."""
        name = "voxroom_synth_render_misprediction_seconds"
        calls = delta(f'{name}_count{{kind="{kind}"}}')
        if not calls:
            return None
        within = {bound: delta(f'{name}_bucket{{kind="{kind}",le="{bound}"}}') for bound in ("0.0", "0.25")}
        return {
            "calls": int(calls),
            "longer_than_predicted": round(1 - within["0.0"] / calls, 3),
            "longer_by_over_0_25_s": round(1 - within["0.25"] / calls, 3),
        }

    hits, misses = delta("voxroom_phrase_cache_hits_total"), delta("voxroom_phrase_cache_misses_total")
    rendered_s = sum(delta(name) for name in after_metrics if name.startswith("voxroom_audio_seconds_total"))
    busy_s = sum(delta(name) for name in after_metrics if name.startswith("voxroom_engine_busy_seconds_total"))
    return {
        "offered_msgs_per_s": rate,
        "sent": len(sent),
        "accepted": len(accepted),
        "ttfa": summary_ms(ttfa),
        "audio_s": round(audio_ms / 1000, 2),
        "audio_s_per_wall_s": round(audio_ms / 1000 / wall, 3),
        # Audio the engine rendered (the phrase cache's replays excluded): what costs compute.
        "rendered_audio_s": round(rendered_s, 2),
        "rendered_s_per_wall_s": round(rendered_s / wall, 3),
        "cache_hits": int(hits),
        # Admitted behind work their first clause would otherwise have made late, instead of refused.
        "admitted_behind": int(delta("voxroom_synth_admitted_behind_total")),
        "continuations_streamed": int(delta("voxroom_synth_continuations_streamed_total")),
        # Engine calls' wall time per wall second, summed over workers (1.0 = one worker never idle).
        "engine_busy_per_wall_s": round(busy_s / wall, 3),
        # How often engine calls took longer than admission predicted, per kind (streamed first clause, whole).
        "render_mispredicted": {kind: mispredicted(kind) for kind in ("streamed", "whole")},
        "by_kind": {kind: {**counts, "audio_s": round(counts["audio_s"], 2)} for kind, counts in by_kind.items()},
        "utterances_with_gaps": gaps,
        # The server's own count of the same thing (voxroom_stream_underruns_total): it cannot see the network.
        "server_counted_gaps": int(delta("voxroom_stream_underruns_total")),
        "worst_lateness_ms": round(worst_late * 1000, 1),
        "gaps": gap_details,
        "server_cpu_cores": round((cpu1 - cpu0) / wall, 3),
        "server_rss_mib": round(rss, 1),
        "cache_hit_rate": round(hits / (hits + misses), 3) if hits + misses else None,
        "errors": dict(errors),
    }


def room_name(rooms: list[list[Member]], room: list[Member]) -> str:
    return f"room-{rooms.index(room)}"


async def setup_rooms(server: ServerProcess, count: int, members: int) -> list[list[Member]]:
    rooms = []
    for r in range(count):
        room = [await connect(server, f"u{r}-{m}") for m in range(members)]
        for member in room:
            await member.request({"type": "join", "room": f"room-{r}"})
        rooms.append(room)
    return rooms


async def ramp(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    rooms = await setup_rooms(server, args.rooms, args.members)
    levels = []
    for rate in [float(x) for x in args.levels.split(",")]:
        result = await run_level(server, rooms, rate, args.seconds, args.repeat_rate, rng)
        levels.append(result)
        print(json.dumps(result, ensure_ascii=False))
    for room in rooms:
        for member in room:
            await member.close()
    return {"levels": levels}


def message_kind(text: str) -> str:
    return "reply" if text in SHORT_REPLIES else "sentence"


def rendering_per_message(saturated: dict[str, Any], repeat_rate: float) -> float:
    """Seconds of audio the engine renders per offered message of the mix, estimated from a saturated phase.

    Per kind from what was accepted (a sentence is always rendered; a reply only when not cached yet, at the
    share of offered replies the cache missed), weighted by the mix, and scaled from served audio (with the
    pauses between clauses) to rendered audio by the phase's own ratio.
    """
    sentences, replies = saturated["by_kind"]["sentence"], saturated["by_kind"]["reply"]
    sentence_s = sentences["audio_s"] / max(1, sentences["accepted"])
    reply_s = replies["audio_s"] / max(1, replies["accepted"])
    reply_miss = max(0.0, 1 - saturated["cache_hits"] / max(1, replies["sent"]))
    rendered_replies = max(0, replies["accepted"] - saturated["cache_hits"])
    served_of_rendered = sentences["audio_s"] + rendered_replies * reply_s
    rendered_per_served = saturated["rendered_audio_s"] / served_of_rendered if served_of_rendered else 1.0
    return ((1 - repeat_rate) * sentence_s + repeat_rate * reply_miss * reply_s) * rendered_per_served


async def at80(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    rooms = await setup_rooms(server, args.rooms, args.members)
    saturated = await run_level(server, rooms, args.saturate_rate, args.saturate_seconds, args.repeat_rate, rng)
    print("saturated:", json.dumps(saturated, ensure_ascii=False), flush=True)
    capacity = saturated["rendered_s_per_wall_s"]
    per_message = rendering_per_message(saturated, args.repeat_rate)
    rate = round(args.share * capacity / per_message, 3)
    print(f"capacity {capacity} rendered audio-s/s, {per_message:.2f} rendered audio-s per offered message: "
          f"offering {rate} msg/s", flush=True)
    level = await run_level(server, rooms, rate, args.seconds, args.repeat_rate, rng)
    level["share_of_capacity"] = round(level["rendered_s_per_wall_s"] / capacity, 3)
    print(f"at {args.share:.0%}:", json.dumps(level, ensure_ascii=False), flush=True)
    for room in rooms:
        for member in room:
            await member.close()
    return {"capacity_rendered_s_per_wall_s": capacity, "rendered_s_per_offered_message": round(per_message, 3),
            "target_share": args.share, "saturated": saturated, "at_80_percent": level}


async def soak(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    rooms = await setup_rooms(server, args.rooms, args.members)
    samples = []
    started = time.perf_counter()
    windows = []
    while time.perf_counter() - started < args.minutes * 60:
        window = await run_level(server, rooms, args.rate, 10, args.repeat_rate, rng)
        elapsed = time.perf_counter() - started
        samples.append({"t_s": round(elapsed, 1), "rss_mib": window["server_rss_mib"]})
        windows.append(window)
        print(f"{elapsed:7.0f} s  RSS {window['server_rss_mib']:.1f} MiB  ttfa p95 {window['ttfa']['p95_ms']} ms  "
              f"hit rate {window['cache_hit_rate']}", flush=True)
        for room in rooms:  # forget what was heard, so the client's own memory stays flat
            for member in room:
                member.frames.clear()
                member.ends.clear()
    at_2min = next((s["rss_mib"] for s in samples if s["t_s"] >= 120), samples[0]["rss_mib"])
    return {"rss_samples": samples, "rss_at_2_min_mib": at_2min, "rss_at_end_mib": samples[-1]["rss_mib"],
            "rss_growth_pct": round(100 * (samples[-1]["rss_mib"] - at_2min) / at_2min, 1)}


async def fanout(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    text = ("This is the fan-out benchmark sentence, long enough to last about ten seconds when spoken aloud, "
            "so that every listener receives several hundred frames in order.")
    speaker = await connect(server, "fanout-speaker")
    await speaker.request({"type": "join", "room": "stage"})
    warm = await speaker.request({"type": "say", "room": "stage", "text": text})  # renders once
    while warm["utterance"] not in speaker.ends:
        await asyncio.sleep(0.1)
    results = []
    listeners: list[Member] = []
    for target in [int(x) for x in args.listeners.split(",")]:
        while len(listeners) < target:
            batch = [connect(server, f"l{len(listeners) + i}") for i in range(min(50, target - len(listeners)))]
            new = await asyncio.gather(*batch)
            await asyncio.gather(*(m.request({"type": "join", "room": "stage"}) for m in new))
            listeners.extend(new)
        await asyncio.sleep(1.0)
        cpu0, _ = proc_stats(server.process.pid)
        started = time.perf_counter()
        reply = await speaker.request({"type": "say", "room": "stage", "text": text})
        utterance = reply["utterance"]
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline and any(utterance not in m.ends for m in listeners):
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - started
        cpu1, rss = proc_stats(server.process.pid)
        frames_expected = speaker.ends[utterance]["frames"] if utterance in speaker.ends else None
        complete = sum(
            1 for m in listeners
            if [s for s, _ in m.frames.get(utterance, [])] == list(range(frames_expected or -1))
        )
        listener_frames = len(listeners) * (frames_expected or 0)
        result = {
            "listeners": len(listeners),
            "frames_per_listener": frames_expected,
            "listeners_complete_in_order": complete,
            "wall_s": round(wall, 2),
            "server_cpu_s": round(cpu1 - cpu0, 3),
            "server_cpu_us_per_listener_frame": round(1e6 * (cpu1 - cpu0) / max(1, listener_frames), 2),
            "server_rss_mib": round(rss, 1),
        }
        print(json.dumps(result))
        results.append(result)
        for m in listeners:
            m.frames.clear()
    for m in [speaker, *listeners]:
        await m.close()
    return {"fanout": results}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = result["levels"]
    x = [lv["offered_msgs_per_s"] for lv in levels]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0][0]
    for q in ("p50_ms", "p95_ms", "p99_ms"):
        ax.plot(x, [lv["ttfa"][q] for lv in levels], marker="o", label=q.replace("_ms", ""))
    ax.set(title="time to first audio", xlabel="offered load (messages/s)", ylabel="ms")
    ax.legend()
    ax = axes[0][1]
    ax.plot(x, [lv["audio_s_per_wall_s"] for lv in levels], marker="o")
    ax.set(title="audio produced", xlabel="offered load (messages/s)", ylabel="audio s per wall s")
    ax = axes[1][0]
    ax.plot(x, [lv["server_cpu_cores"] for lv in levels], marker="o", label="CPU (cores)")
    ax2 = ax.twinx()
    ax2.plot(x, [lv["server_rss_mib"] for lv in levels], marker="s", color="tab:red", label="RSS (MiB)")
    ax.set(title="server CPU and RSS", xlabel="offered load (messages/s)", ylabel="cores")
    ax2.set_ylabel("MiB")
    ax = axes[1][1]
    codes = sorted({c for lv in levels for c in lv["errors"]})
    for code in codes:
        ax.plot(x, [lv["errors"].get(code, 0) for lv in levels], marker="o", label=code)
    ax.plot(x, [lv["cache_hit_rate"] or 0 for lv in levels], marker="^", linestyle="--", label="cache hit rate")
    ax.set(title="errors by code; cache hit rate", xlabel="offered load (messages/s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def add_traffic_arguments(parser: argparse.ArgumentParser) -> None:
    """The chat mix, its rooms, the saturated phase that measures capacity, and the server's settings."""
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--repeat-rate", type=float, default=0.35, help="share of short repeated replies")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--saturate-rate", type=float, default=3.0, help="messages per second to saturate")
    parser.add_argument("--saturate-seconds", type=float, default=90)
    parser.add_argument("--share", type=float, default=0.8, help="share of capacity to offer (load.py: at80 only)")
    parser.add_argument("--env", action="append", default=[], help="extra server setting NAME=VALUE")


def load_server_env(args: argparse.Namespace, **settings: str) -> dict[str, str]:
    """The server's settings under load: limits out of the way of the offered traffic, then `settings`, then
    --env."""
    env = {"VOXROOM_DAILY_LIMIT": "1000000", "VOXROOM_RATE_ACCOUNT": "1000,1000",
           "VOXROOM_RATE_CONNECTION": "1000,1000", "VOXROOM_SEND_QUEUE": "4096", "VOXROOM_MAX_ACTIVE": "32", **settings}
    env.update(dict(item.split("=", 1) for item in args.env))
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("ramp", "fanout", "soak", "at80"), nargs="?", default="ramp")
    add_traffic_arguments(parser)
    parser.add_argument("--levels", default="0.25,0.5,1,1.5,2")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--listeners", default="10,100,300,1000")
    parser.add_argument("--rate", type=float, default=0.5, help="soak: messages per second")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--engine", default=None, help="kokoro for ramp and soak, fake for fanout")
    parser.add_argument("--keep-log", default=None, help="copy the server's log here when done")
    parser.add_argument("--name", default=None, help="result file name under bench/results/ (default: load_MODE)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a thousand listeners need file descriptors
    args.engine = args.engine or ("fake" if args.mode == "fanout" else "kokoro")
    env = load_server_env(args, VOXROOM_ENGINE=args.engine)
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(Path(data_dir), env=env)
        try:
            runner = {"ramp": ramp, "fanout": fanout, "soak": soak, "at80": at80}[args.mode]
            result = asyncio.run(runner(server, args))
        finally:
            server.stop()
            if args.keep_log:
                shutil.copyfile(server.log_path, args.keep_log)
    result = {"benchmark": f"load-{args.mode}", "machine": machine(), "args": vars(args), **result}
    path = write_result(args.name or f"load_{args.mode}", result)
    if args.mode == "ramp":
        plot(result, path.with_suffix(".png"))
        print("plot:", path.with_suffix(".png"))
    print("written to", path)


if __name__ == "__main__":
    main()
