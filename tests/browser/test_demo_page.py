"""The demo page in real Chromium: sign in, voice controls, two pages in a room, errors in words.

Screenshots of the main states go to docs/img/ when VOXROOM_SCREENSHOTS=1.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from synth.audio_io import decode_audio
from tests.browser.conftest import SCREENSHOTS
from tests.browser.pages import (
    FIRST_ENERGY_JS,
    PHONE,
    audio_stats,
    enrollment_available,
    join,
    open_page,
    send,
    sign_in,
    wait_for_bytes,
    wait_for_energy,
)
from tests.conftest import ServerProcess

pytestmark = pytest.mark.browser


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS is None:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def close(page: Page) -> None:
    page.context.close()


def test_sign_in_by_name_and_refusals_in_words(browser: Browser, demo_server: ServerProcess) -> None:
    page = open_page(browser, demo_server)
    try:
        assert page.is_hidden("#token-form")  # demo mode: names, not tokens
        shot(page, "signin")
        page.get_by_label("Display name").fill("no/slashes")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#errors")).to_contain_text("A display name is 1 to 32 letters")
        sign_in(page, "dora")
        expect(page.locator("#errors")).to_be_empty()  # a successful sign-in clears old errors
        expect(page.locator("#signin")).to_be_hidden()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        # The room and voice sections unlock only now.
        assert "locked" not in (page.get_attribute("#room", "class") or "")
    finally:
        close(page)


def test_voice_controls(browser: Browser, demo_server: ServerProcess) -> None:
    page = open_page(browser, demo_server)
    try:
        sign_in(page, "erin")
        assert enrollment_available(demo_server), "every server serves enrollment"
        expect(page.locator("#enroll-unavailable")).to_be_hidden()
        expect(page.get_by_role("switch")).to_be_disabled()  # nothing to consent to yet
        # A file that is not audio is refused in words before anything is analysed.
        page.get_by_label("upload a recording").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a recording"}]
        )
        expect(page.locator("#errors")).to_contain_text("Recordings must be audio/wav")
        record_and_enroll(page)

        with page.expect_response("**/v1/voices/me/consent") as consent:
            page.get_by_label("Let Voxroom speak in my voice").check()
        assert consent.value.status == 200 and consent.value.json() == {"consent": True}
        expect(page.get_by_role("switch")).to_be_checked()

        page.get_by_label("Let a bot speak in my voice").fill("bot-7")
        with page.expect_response("**/v1/voices/me/grants") as granted:
            page.get_by_role("button", name="Grant").click()
        assert granted.value.status == 201
        expect(page.locator("#grants")).to_contain_text("bot-7")
        shot(page, "voice")
        with page.expect_response("**/v1/voices/me/grants/bot-7") as revoked:
            page.get_by_role("button", name="Revoke bot-7").click()
        assert revoked.value.json() == {"grantee": "bot-7", "revoked": True}
        expect(page.locator("#grants")).not_to_contain_text("bot-7")

        page.get_by_label("Let a bot speak in my voice").fill("has space")
        page.get_by_role("button", name="Grant").click()
        expect(page.locator("#errors")).to_contain_text("without spaces or slashes")

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Delete my voice").click()
        expect(page.locator("#enroll-status")).to_have_text("Your voice was deleted.")
        expect(page.locator("#voice-summary")).to_have_text("No voice recorded yet.")
        expect(page.get_by_role("switch")).not_to_be_checked()
        expect(page.get_by_role("switch")).to_be_disabled()
    finally:
        close(page)


def record_and_enroll(page: Page) -> None:
    """Record 12 s from the (fake) microphone while the passage shows, then see the report."""
    expect(page.locator("#passage")).to_contain_text("rainbow")
    page.get_by_role("button", name="Start recording").click()
    expect(page.get_by_role("button", name="Stop and send")).to_be_visible()
    page.wait_for_function("document.getElementById('record-time').textContent >= '0:12'", timeout=20000)
    page.get_by_role("button", name="Stop and send").click()
    expect(page.locator("#quality")).to_be_visible(timeout=90000)
    expect(page.locator("#quality-figures")).to_contain_text("Signal to noise")
    expect(page.locator("#enroll-status")).to_have_text("Recording accepted.", timeout=90000)
    expect(page.locator("#similarity")).to_be_visible()
    expect(page.locator("#fit-progress")).to_be_visible()
    shot(page, "enrolled")


@pytest.mark.parametrize("mode", ["webrtc", "websocket"])
def test_two_pages_in_a_room_hear_each_other(browser: Browser, demo_server: ServerProcess, mode: str) -> None:
    room = f"page-room-{mode}"
    speaker, listener = open_page(browser, demo_server), open_page(browser, demo_server)
    try:
        sign_in(speaker, f"alice-{mode}")
        sign_in(listener, f"bob-{mode}")
        join(speaker, room)
        join(listener, room, mode)
        assert audio_stats(listener)["totalAudioEnergy"] == 0
        expect(listener.locator("#members")).to_contain_text(f"alice-{mode}")
        expect(speaker.locator("#members")).to_contain_text(f"bob-{mode}")
        expect(listener.locator("#listening")).to_contain_text("WebRTC" if mode == "webrtc" else "WebCodecs")

        listener.evaluate(f"() => {{ window.firstEnergy = ({FIRST_ENERGY_JS})(30000); }}")
        send(speaker, "Hello Bob, can you hear me?")
        heard_at = listener.evaluate("window.firstEnergy")
        sent_at = speaker.evaluate("window.voxroomDemo.sendTimes.at(-1)")
        assert heard_at is not None, "the listener never heard anything"
        print(f"\n{mode}: send to first audio energy {heard_at - sent_at} ms")

        wait_for_energy(listener, above=0.001)
        # All of the message arrives (two clauses, about two seconds of Opus), not just its first clause.
        wait_for_bytes(listener, above=1000)
        expect(listener.locator("#log")).to_contain_text("Hello Bob, can you hear me?")
        expect(speaker.locator("#quota")).to_contain_text("1 of 2 messages used")
        if mode == "webrtc":
            shot(speaker, "room-speaker")
            shot(listener, "room-listener")

        # Leaving closes the audio: the speaker sees the listener go.
        listener.get_by_role("button", name="Leave").click()
        expect(speaker.locator("#members")).not_to_contain_text(f"bob-{mode}")
    finally:
        close(speaker)
        close(listener)


def test_blocked_words_and_a_spent_quota_are_explained(browser: Browser, demo_server: ServerProcess) -> None:
    page = open_page(browser, demo_server, viewport=PHONE)
    try:
        sign_in(page, "carol")
        join(page, "quota-room")
        send(page, "you are a zorbleflux")
        expect(page.locator("#errors")).to_contain_text("blocked by the content filter")
        expect(page.get_by_role("textbox", name="Message")).to_have_value("you are a zorbleflux")  # kept, to rephrase
        for text in ("First message.", "Second message."):
            send(page, text)
            expect(page.get_by_role("textbox", name="Message")).to_have_value("")
        send(page, "Third message.")
        expect(page.locator("#errors")).to_contain_text("Today's quota is used up")
        expect(page.locator("#errors")).to_contain_text("You can send again in")
        expect(page.locator("#quota")).to_contain_text("2 of 2 messages used")
        error = page.locator("#errors .error").first
        assert error.get_attribute("data-code") == "daily_limit"
        shot(page, "errors-phone")
        # Errors can be dismissed from the keyboard.
        error.get_by_role("button", name="Dismiss this message").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#errors .error[data-code=daily_limit]")).to_have_count(0)
        assert json.loads(page.evaluate("JSON.stringify(window.voxroomDemo.sendTimes.length)")) == 4
    finally:
        close(page)


def test_the_microphone_recording_is_speech_the_server_can_decode(browser: Browser, demo_server: ServerProcess) -> None:
    """The page's recorder, fed by the fake microphone playing a real enrollment recording,
    produces a file the server's decoder reads back as ~3 s of loud-enough sound."""
    page = open_page(browser, demo_server)
    try:
        encoded = page.evaluate(
            """async () => {
              const { Recorder } = await import("/web-demo/recorder.js");
              const recorder = new Recorder();
              await recorder.start();
              await new Promise((r) => setTimeout(r, 3000));
              const blob = await recorder.stop();
              const bytes = new Uint8Array(await blob.arrayBuffer());
              let binary = "";
              for (const b of bytes) binary += String.fromCharCode(b);
              return { type: blob.type, data: btoa(binary) };
            }"""
        )
    finally:
        close(page)
    assert encoded["type"] in ("audio/webm", "audio/ogg")
    audio = decode_audio(base64.b64decode(encoded["data"]), sample_rate=16000, max_seconds=60)
    assert 2.0 < len(audio) / 16000 < 4.5
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms > 0.01, f"the recording is silent (RMS {rms:.4f})"
