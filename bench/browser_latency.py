"""How long from pressing Send on one page until the other pages hear it, in real Chromium.

Three pages in one room: A types; B listens over WebRTC; C over the WebSocket with
WebCodecs. Per round: A's Send press, A's `accepted`, C's first Opus frame on the
WebSocket (the server's synthesis latency as a client sees it), and the first rise of
played-out audio energy at B and at C. Prints the medians and writes JSON.

    python bench/browser_latency.py [--rounds 5] [--out bench/results/browser_latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.browser.conftest import CHROMIUM, chromium_args  # noqa: E402
from tests.browser.pages import FIRST_ENERGY_JS, join, open_page, send, sign_in  # noqa: E402
from tests.conftest import REPO, ServerProcess  # noqa: E402

SENTENCES = [
    "Hello there, can you hear me?",
    "The weather is lovely today.",
    "Let us meet at seven tonight.",
    "This is round four of the test.",
    "One more line, and we are done.",
    "Thanks for listening, everyone.",
    "See you all tomorrow morning.",
]
FIRST_FRAME_JS = """() => {
  const vox = window.voxroomDemo.state.vox;
  window.firstFrame = new Promise((resolve) => {
    const off = vox.on("frame", () => { off(); resolve(Date.now()); });
    setTimeout(() => resolve(null), 30000);
  });
}"""


def summarise(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def wait_until_quiet(page: Page, quiet_s: float = 0.5, timeout_s: float = 30.0) -> None:
    """Until the page's latest utterance has ended and it has played no new audio energy for `quiet_s`."""
    page.wait_for_function(
        "!document.querySelector('#log li') || document.querySelector('#log li').dataset.outcome",
        timeout=timeout_s * 1000,
    )
    deadline = time.monotonic() + timeout_s
    last, quiet_since = None, time.monotonic()
    while time.monotonic() < deadline:
        energy = page.evaluate("window.voxroomDemo.player.stats()")["totalAudioEnergy"]
        if energy != last:
            last, quiet_since = energy, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.1)
    raise RuntimeError("the room never went quiet")


def run(rounds: int) -> dict[str, Any]:
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as data_dir, sync_playwright() as playwright:
        server = ServerProcess(Path(data_dir), env={"VOXROOM_DEMO": "1"})
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args())
        try:
            speaker, rtc, codecs = (open_page(browser, server) for _ in range(3))
            for page, name, mode in ((speaker, "ann", "auto"), (rtc, "ben", "webrtc"), (codecs, "cy", "websocket")):
                sign_in(page, name)
                join(page, "latency", mode)
            send(speaker, "Warming up.")  # the first synthesis of a process is not what users see later
            for index in range(rounds):
                time.sleep(1.0)
                wait_until_quiet(rtc)
                wait_until_quiet(codecs)
                rtc.evaluate(f"() => {{ window.firstEnergy = ({FIRST_ENERGY_JS})(30000); }}")
                codecs.evaluate(f"() => {{ window.firstEnergy = ({FIRST_ENERGY_JS})(30000); }}")
                codecs.evaluate(FIRST_FRAME_JS)
                send(speaker, SENTENCES[index % len(SENTENCES)])
                rtc_at, codecs_at = rtc.evaluate("window.firstEnergy"), codecs.evaluate("window.firstEnergy")
                frame_at = codecs.evaluate("window.firstFrame")
                sent_at = speaker.evaluate("window.voxroomDemo.sendTimes.at(-1)")
                accepted_at = speaker.evaluate("window.voxroomDemo.acceptedTimes.at(-1)")
                if None in (rtc_at, codecs_at, frame_at):
                    raise RuntimeError(f"round {index}: nothing heard ({rtc_at}, {codecs_at}, {frame_at})")
                row = {
                    "accepted_ms": accepted_at - sent_at,
                    "first_ws_frame_ms": frame_at - sent_at,
                    "webrtc_first_energy_ms": rtc_at - sent_at,
                    "webcodecs_first_energy_ms": codecs_at - sent_at,
                    # What each way of listening adds once the first frame has left the server.
                    "webrtc_after_first_frame_ms": rtc_at - frame_at,
                    "webcodecs_after_first_frame_ms": codecs_at - frame_at,
                }
                rows.append(row)
                print(f"round {index + 1}: " + ", ".join(f"{k} {v:.0f}" for k, v in row.items()), flush=True)
            wait_until_quiet(rtc)
            jitter = rtc.evaluate("window.voxroomDemo.player.stats()")
        finally:
            browser.close()
            server.stop()
    return {
        "rounds": rounds,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "figures": {key: summarise([row[key] for row in rows]) for key in rows[0]},
        # Chromium's mean jitter-buffer delay on the WebRTC page: the receiver's share of the wait.
        "webrtc_mean_jitter_buffer_ms": round(
            1000 * jitter["jitterBufferDelay"] / max(1, jitter["jitterBufferEmittedCount"]), 1
        ),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "browser_latency.json")
    args = parser.parse_args()
    result = run(args.rounds)
    for key, figure in result["figures"].items():
        low, high = figure["min_ms"], figure["max_ms"]
        print(f"{key:28s} median {figure['median_ms']:7.0f} ms  (min {low:.0f}, max {high:.0f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"webrtc mean jitter buffer     {result['webrtc_mean_jitter_buffer_ms']:7.0f} ms")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
