"""Chromium (Debian's /usr/bin/chromium) driven by Playwright, against a real `voxroom serve --demo`.

The fake microphone plays a real enrollment recording from tests/data/voices, so the
page's recording path sends real speech.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_VOICES, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
MIC_RECORDING = SHARED_VOICES / "en_1688_enroll.wav"
# The README's screenshots are refreshed only when asked (VOXROOM_SCREENSHOTS=1): a test run leaves the tree clean.
SCREENSHOTS = REPO / "docs" / "img" if os.environ.get("VOXROOM_SCREENSHOTS") == "1" else None
BLOCKLIST = REPO / "tests" / "data" / "blocklist_test.txt"

pytestmark = pytest.mark.browser


def chromium_args(mic_wav: Path = MIC_RECORDING) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]


# Module scope, not session: while Playwright's sync API is open it keeps an event loop
# running in this thread, which would stop the asyncio tests of other directories.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args())
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Demo mode, the test block list, and two messages a day per sender.

    Admission by predicted compute is off (VOXROOM_MAX_FIRST_AUDIO=0): Chromium shares the machine's two
    cores with the engine, the cost model rightly learns that renders are slow, and a page test would see
    `overloaded` where it checks other errors. Admission is tested in tests/e2e/test_load_behaviour.py.
    """
    proc = ServerProcess(
        tmp_path_factory.mktemp("browser"),
        env={
            "VOXROOM_DEMO": "1",
            "VOXROOM_BLOCKLIST": str(BLOCKLIST),
            "VOXROOM_DAILY_LIMIT": "2",
            "VOXROOM_MAX_FIRST_AUDIO": "0",
        },
    )
    yield proc
    proc.stop()
