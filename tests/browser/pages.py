"""Helpers that drive the demo page the way a person would: sign in, join, type, listen."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

from playwright.sync_api import Browser, Page, ViewportSize

from tests.conftest import ServerProcess

PHONE: ViewportSize = {"width": 390, "height": 844}


def open_page(browser: Browser, server: ServerProcess, *, viewport: ViewportSize | None = None) -> Page:
    context = browser.new_context(viewport=viewport or {"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(server.http + "/")
    page.wait_for_selector("#name-form:not([hidden])")
    return page


def sign_in(page: Page, name: str) -> None:
    page.get_by_label("Display name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#whoami:not([hidden])")
    assert name in page.inner_text("#whoami")


def join(page: Page, room: str, mode: str = "auto") -> None:
    page.get_by_label("Room", exact=True).fill(room)
    page.select_option("#audio-mode", mode)
    page.get_by_role("button", name="Join").click()
    page.wait_for_function("document.getElementById('listening').textContent.startsWith('Listening')")


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("textbox", name="Message").press("Enter")


def audio_stats(page: Page) -> dict[str, Any]:
    return page.evaluate("window.voxroomDemo.player.stats()")  # type: ignore[no-any-return]


def wait_for_player_stat(page: Page, name: str, above: float, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll the page's player until `stats()[name]` exceeds `above`; returns the stats then."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = audio_stats(page)
        if stats[name] > above:
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not above {above} within {timeout_s} s: {stats}")
        time.sleep(0.2)


def wait_for_energy(page: Page, above: float, timeout_s: float = 30.0) -> dict[str, Any]:
    return wait_for_player_stat(page, "totalAudioEnergy", above, timeout_s)


def wait_for_bytes(page: Page, above: int, timeout_s: float = 30.0) -> dict[str, Any]:
    return wait_for_player_stat(page, "bytesReceived", above, timeout_s)


# Runs in the listening page: polls the player every 10 ms and resolves with the wall-clock
# time (ms) at which the played-out energy first rises above its value when the poll started.
FIRST_ENERGY_JS = """async (timeoutMs) => {
  const player = window.voxroomDemo.player;
  const base = (await player.stats()).totalAudioEnergy;
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const stats = await player.stats();
    if (stats.totalAudioEnergy > base + 1e-6) return Date.now();
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}"""


def enrollment_available(server: ServerProcess) -> bool:
    request = urllib.request.Request(
        server.http + "/v1/voices/me", headers={"Authorization": f"Bearer {server.token('probe')}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 405):
            return False
        raise
