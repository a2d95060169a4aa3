"""Time to first audio: from `say` sent to the first binary frame at another member.

Starts a real server, sends uncached short messages (mixed Chinese and English, 2 to 30
characters) one at a time, and reports p50/p95 plus the engine's real-time factor.

    python bench/ttfa.py [--messages 20] [--out bench/results/ttfa.json]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, scrape_metrics, summary_ms, write_result  # noqa: E402
from voxroom.client import VoxroomClient  # noqa: E402
from voxroom.testing import ServerProcess  # noqa: E402

MESSAGES = [
    "好的",
    "ok",
    "在吗？",
    "thanks!",
    "我马上就到，等我一下。",
    "See you in five minutes.",
    "今天的会议改到下午三点了。",
    "Can you hear me clearly now?",
    "哈哈，这个太好笑了",
    "lol that is hilarious",
    "明天早上九点在公司门口见面吧",
    "Let's meet at the station tomorrow.",
    "我觉得这个方案还需要再讨论一下。",
    "Sorry, my connection dropped for a second.",
    "周末一起去爬山怎么样？",
    "I just sent you the file, please check.",
    "晚饭想吃什么？火锅还是烤肉？",
    "Good morning everyone, how was your weekend?",
    "这首歌真好听，能把名字发给我吗",
    "Happy birthday! Hope you have a great day.",
]


async def run(server: ServerProcess, count: int) -> dict[str, object]:
    speaker = await VoxroomClient.connect(server.ws_url, server.token("bench-speaker"))
    listener = await VoxroomClient.connect(server.ws_url, server.token("bench-listener"))
    await speaker.join("bench")
    await listener.join("bench")
    # One warm-up message so lazy loading is not measured.
    warm = await speaker.say("bench", "预热 warm up")
    await listener.utterance(warm["utterance"])
    ttfa: list[float] = []
    per_message = []
    for index in range(count):
        text = MESSAGES[index % len(MESSAGES)] + ("" if index < len(MESSAGES) else f" {index}")
        sent = time.perf_counter()
        accepted = await speaker.say("bench", text)
        heard = await listener.utterance(accepted["utterance"], timeout=120)
        assert heard.first_frame_at is not None and heard.end and heard.end["type"] == "speech_end", heard.end
        first = heard.first_frame_at - sent
        ttfa.append(first)
        per_message.append({"text": text, "chars": len(text), "ttfa_ms": round(first * 1000, 1),
                            "audio_ms": heard.end["duration_ms"]})
        print(f"{first * 1000:7.1f} ms  {heard.end['duration_ms']:5d} ms audio  {text}")
    # The same messages again: now they come from the phrase cache.
    cached: list[float] = []
    for entry in per_message:
        sent = time.perf_counter()
        accepted = await speaker.say("bench", str(entry["text"]))
        heard = await listener.utterance(accepted["utterance"], timeout=120)
        assert heard.first_frame_at is not None
        cached.append(heard.first_frame_at - sent)
    await speaker.close()
    await listener.close()
    metrics = scrape_metrics(server.http)
    hits = metrics.get("voxroom_phrase_cache_hits_total", 0.0)
    rtf_sum = metrics.get('voxroom_engine_real_time_factor_sum{engine="kokoro"}', 0.0)
    rtf_count = metrics.get('voxroom_engine_real_time_factor_count{engine="kokoro"}', 0.0)
    audio_s = metrics.get('voxroom_audio_seconds_total{engine="kokoro"}', 0.0)
    marks = metrics.get("voxroom_watermark_embed_seconds_count", 0.0)
    mark_cpu = metrics.get("voxroom_watermark_embed_seconds_sum", 0.0)
    marked_audio = metrics.get("voxroom_watermark_audio_seconds_total", 0.0)
    return {
        "benchmark": "ttfa",
        "machine": machine(),
        "messages": count,
        "time_to_first_audio": summary_ms(ttfa),
        "time_to_first_audio_cached": summary_ms(cached),
        "cache_hits": int(hits),
        "uncached_up_to_20_chars": summary_ms([t for t, m in zip(ttfa, per_message, strict=True) if m["chars"] <= 20]),
        "engine_rtf_mean_per_clause": round(rtf_sum / rtf_count, 3) if rtf_count else None,
        "engine_clauses": int(rtf_count),
        "audio_seconds": round(audio_s, 2),
        "watermark": {
            "clauses_marked": int(marks),
            "cpu_ms_per_clause": round(1000 * mark_cpu / marks, 2) if marks else None,
            "rtf": round(mark_cpu / marked_audio, 4) if marked_audio else None,
        },
        "per_message": per_message,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--name", default="ttfa", help="result file name under bench/results/")
    parser.add_argument("--env", action="append", default=[], help="extra server setting NAME=VALUE")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the server's log here when done")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        # Rate limits and quotas would refuse a benchmark's back-to-back messages: lift them.
        server = ServerProcess(
            Path(data_dir),
            env={
                "VOXROOM_RATE_ACCOUNT": "1000,1000",
                "VOXROOM_RATE_CONNECTION": "1000,1000",
                "VOXROOM_DAILY_LIMIT": "1000000",
                **dict(item.split("=", 1) for item in args.env),
            },
        )
        try:
            result = asyncio.run(run(server, args.messages))
        finally:
            server.stop()
            if args.keep_log is not None:
                args.keep_log.write_text(server.log_path.read_text())
    ttfa = result["time_to_first_audio"]
    cached = result["time_to_first_audio_cached"]
    print(f"cached (phrase cache, {result['cache_hits']} hits): p50 {cached['p50_ms']} ms, "  # type: ignore[index]
          f"p95 {cached['p95_ms']} ms")  # type: ignore[index]
    print(f"uncached up to 20 characters: {result['uncached_up_to_20_chars']}")
    print(f"\ntime to first audio: p50 {ttfa['p50_ms']} ms, p95 {ttfa['p95_ms']} ms "  # type: ignore[index]
          f"(n={ttfa['n']}); engine RTF {result['engine_rtf_mean_per_clause']}; "  # type: ignore[index]
          f"watermark {result['watermark']}")
    print("written to", write_result(args.name, result))


if __name__ == "__main__":
    main()
