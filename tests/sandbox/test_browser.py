"""The whole story in a real headless Chromium against `purser run`'s sandbox, as a newcomer would play it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.services import IN_CI

pytestmark = pytest.mark.real_clock  # `purser run` and Chromium are other processes on the machine's clock

ROOT = Path(__file__).resolve().parents[2]
#: where the screenshot goes: a temporary folder, unless `make screenshot` asks for the README's
SCREENSHOT_TO = os.environ.get("PURSER_SCREENSHOT")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package", pytrace=False)
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def purser(tmp_path):
    """`purser run` as a newcomer starts it: embedded defaults, no Slack credentials."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "REDIS_URL", "PURSER_"))}
    env.update(PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path}/purser.db", PURSER_SECRET_KEY_FILE=str(tmp_path / "secret.key"))
    # Its log goes to a file: a pipe nobody reads fills up (a line per request the page makes)
    # and then stops Purser at its next log line.
    log_path = tmp_path / "purser-run.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "purser", "run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("purser run did not answer within 60 s:\n" + log_path.read_text()[-5000:])
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    print(f"--- purser run's log ({log_path}), last 5,000 characters ---\n" + log_path.read_text()[-5000:])  # shown when a test fails
    assert proc.returncode == 0, "purser run did not stop cleanly on SIGTERM:\n" + log_path.read_text()[-3000:]


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()


def become(page, name: str) -> None:
    page.select_option("#who", label=name)


def channel(page, name: str) -> None:
    page.click(f"#channels button:text-is('{name}')")


def test_ask_approve_reveal_once_and_see_the_alert(purser, page, tmp_path):
    page.goto(purser + "/")
    become(page, "Dev (developer)")
    channel(page, "#general")
    page.fill("#message-box", "/ai-key new demo --project search --limit $20 -w prod")
    page.press("#message-box", "Enter")
    page.wait_for_selector(".message.ephemeral:has-text('request #')")

    become(page, "Ada (admin)")
    channel(page, "#ai-approvals")
    page.click(".message:has-text('demo') button[data-action-id='request_approve']")
    page.wait_for_selector(".message:has-text('Approved')")

    become(page, "Dev (developer)")
    channel(page, "Purser (DM)")
    page.click(".message:has-text('is ready') button[data-action-id='key_reveal']")
    secret = page.wait_for_selector("#modal .bk-plain").inner_text().strip()
    assert secret.startswith("sk-purser-")
    page.click("#modal footer button:text-is('Done')")
    page.wait_for_selector("#modal-backdrop", state="hidden")
    # shown once: the message says so and no longer offers a Reveal
    page.wait_for_selector(".message:has-text('was revealed')")
    assert page.query_selector(".message:has-text('is ready') button[data-action-id='key_reveal']") is None
    assert secret not in page.inner_text("#messages")

    page.select_option("#spend-key", label="prod · demo (Dev) · search")
    page.fill("#spend-amount", "$21")
    page.click("#spend-go")
    page.wait_for_selector("#spend-result:has-text('Recorded')")
    channel(page, "#ai-alerts")
    alert = page.wait_for_selector(".message:has-text('80%')")
    assert "search" in alert.inner_text() and "$21.00 of $25.00" in alert.inner_text()
    shot = Path(SCREENSHOT_TO) if SCREENSHOT_TO else tmp_path / "sandbox.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000, "the screenshot is empty"


def test_make_run_answers_quickly_and_keeps_its_data(purser):
    state = httpx.get(purser + "/sandbox/state", params={"user": "U0ADA00001"}).json()
    assert {c["name"] for c in state["channels"]} >= {"#ai-approvals", "#ai-alerts", "#ai-audit"}
    assert len(state["people"]) == 5


def test_a_key_pasted_in_general_is_revoked_in_its_thread_and_its_owner_offered_a_replacement(purser, page):
    page.goto(purser + "/")
    become(page, "Dev (developer)")
    channel(page, "Purser (DM)")
    page.fill("#message-box", "/ai-key new pasted -w dev")
    page.press("#message-box", "Enter")
    page.click(".message:has-text('is ready') button[data-action-id='key_reveal']")
    secret = page.wait_for_selector("#modal .bk-plain").inner_text().strip()
    page.click("#modal footer button:text-is('Done')")
    page.wait_for_selector("#modal-backdrop", state="hidden")
    assert httpx.get(purser + "/v1/authz", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    page.wait_for_selector("#key-list li[data-status='active']:has-text('dev · pasted (Dev)')")

    # Plain text is a message: it shows as Dev's, and reaches Purser as a Slack message event.
    channel(page, "#general")
    page.fill("#message-box", f"here is the key: {secret}")
    page.press("#message-box", "Enter")
    pasted = page.wait_for_selector(".message[data-author='U0DEV00001']:has-text('here is the key')")
    assert pasted.query_selector(".author").inner_text().startswith("Dev")
    # Purser answers in the message's thread, shown right under it
    reply = page.wait_for_selector(".message[data-author='U0DEV00001'] + .message.reply:has-text('revoked')")
    assert reply.query_selector(".author").inner_text().startswith("Purser") and secret not in reply.inner_text()
    page.wait_for_selector("#key-list li[data-status='revoked']:has-text('dev · pasted (Dev)'):has-text('leaked in #general')")
    refused = httpx.get(purser + "/v1/authz", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401 and refused.headers["X-Purser-Refusal"] == "revoked"
    assert page.query_selector("#spend-key option:has-text('pasted')") is None  # no spend on a revoked key

    # The owner's DM offers a replacement, and the button works through the usual click path.
    channel(page, "Purser (DM)")
    page.click(".message:has-text('revoked it at once') button[data-action-id='key_replace']")
    page.wait_for_selector(".message:has-text('A replacement for')")
    page.wait_for_selector("#key-list li[data-status='active']:has-text('dev · pasted (Dev)')")
    assert secret not in page.inner_text("#messages")  # the DMs name the key, never show it


def share(purser: str, channel: str, filename: str, content: bytes, alt: str, title: str) -> str:
    """A file shared in ``channel`` through the sandbox's Web API, as Purser's workers share charts; its id."""
    api = httpx.Client(base_url=purser + "/api/", headers={"Authorization": "Bearer xoxb-sandbox"})
    ticket = api.post("files.getUploadURLExternal", data={"filename": filename, "length": str(len(content)), "alt_txt": alt}).json()
    assert httpx.post(ticket["upload_url"], content=content).status_code == 200
    done = api.post("files.completeUploadExternal", data={"files": f'[{{"id": "{ticket["file_id"]}", "title": "{title}"}}]', "channel_id": channel}).json()
    assert done["ok"], done
    return ticket["file_id"]


def test_a_shared_chart_shows_inline_with_its_alt_text_and_a_csv_as_a_download(purser, page):
    from datetime import date

    from bot.charts import SpendChart, describe_spend, render_spend

    chart = SpendChart("Spend in prod", date(2027, 6, 1), date(2027, 7, 1), date(2027, 6, 16), {"search": [2_000_000] * 16}, [("Budget", 50_000_000)], 62_000_000)
    png, alt = render_spend(chart), describe_spend(chart)
    chart_id = share(purser, "C0GENERAL1", "spend.png", png, alt, "Spend in June")
    share(purser, "C0GENERAL1", "statement-2027-06.csv", b"day,spent\n2027-06-01,2.00\n", "June's statement", "Statement for June")
    page.goto(purser + "/")
    channel(page, "#general")
    img = page.wait_for_selector(f".message img[src='/files/{chart_id}']")
    assert img.get_attribute("alt") == alt and img.get_attribute("title") == "Spend in June"
    page.wait_for_function("document.querySelector('.message img').naturalWidth === 1000")  # the PNG itself, from the upload's bytes
    link = page.wait_for_selector(".message a.file-link")
    assert "statement-2027-06.csv" in link.inner_text() and link.get_attribute("download") == "statement-2027-06.csv"
    assert httpx.get(purser + link.get_attribute("href")).content == b"day,spent\n2027-06-01,2.00\n"
