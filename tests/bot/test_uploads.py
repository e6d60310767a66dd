"""Files reach Slack once per ref, through the three calls Slack documents, and the Web API double holds Purser to them."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
from slack_sdk.errors import SlackApiError

from bot.charts import SpendChart, describe_spend, render_spend
from bot.slack_client import Slack, SlackAccessLost
from store import slack_access
from store.messages import find_message
from tests.fixtures_workers import BOT_TOKEN

CSV = b"day,project,spent\n2027-06-01,search,12.50\n"


@pytest.fixture
def slack_client(db, slack_server) -> Slack:
    _, url = slack_server
    return Slack(db, BOT_TOKEN, url + "/api/")


@pytest.fixture
def chart() -> tuple[bytes, str]:
    spend = SpendChart("Spend in acme", date(2027, 6, 1), date(2027, 7, 1), date(2027, 6, 16), {"search": [3_000_000] * 16}, [("Budget", 100_000_000)], 93_000_000)
    return render_spend(spend), describe_spend(spend)


def test_a_chart_is_uploaded_with_its_alt_text_and_shared_in_the_channel(db, slack_client, slack_api, chart):
    png, alt = chart
    file_id = slack_client.upload("chart:acme:2027-06", "C0GENERAL1", filename="spend-2027-06.png", content=png, alt_text=alt, title="Spend in June", initial_comment="June so far")
    [asked] = slack_api.calls_to("files.getUploadURLExternal")
    assert asked.args["alt_txt"] == alt and int(asked.args["length"]) == len(png) and asked.args["filename"] == "spend-2027-06.png"
    [done] = slack_api.calls_to("files.completeUploadExternal")
    assert json.loads(done.args["files"]) == [{"id": file_id, "title": "Spend in June"}]
    [uploaded] = slack_api.files
    assert uploaded.id == file_id and uploaded.alt_txt == alt and uploaded.title == "Spend in June" and uploaded.channels == ["C0GENERAL1"]
    assert slack_api.file_bytes(file_id) == png and uploaded.mimetype == "image/png"
    [message] = slack_api.channel_messages("C0GENERAL1")
    assert message.text == "June so far" and message.files[0]["id"] == file_id and message.files[0]["alt_txt"] == alt
    with db.session() as s:
        assert find_message(s, "chart:acme:2027-06").ts == file_id


def test_a_retry_with_the_same_ref_uploads_nothing(slack_client, slack_api, chart):
    png, alt = chart
    first = slack_client.upload("chart:retry", "C0GENERAL1", filename="spend.png", content=png, alt_text=alt, title="Spend")
    calls = len(slack_api.calls)
    again = slack_client.upload("chart:retry", "C0GENERAL1", filename="spend.png", content=png, alt_text=alt, title="Spend")
    assert again == first and len(slack_api.calls) == calls and len(slack_api.files) == 1


def test_a_rate_limited_upload_is_retried(slack_client, slack_api, chart):
    png, alt = chart
    slack_api.fail("files.getUploadURLExternal", status=429, retry_after=1)
    file_id = slack_client.upload("chart:limited", "C0GENERAL1", filename="spend.png", content=png, alt_text=alt, title="Spend")
    assert len(slack_api.calls_to("files.getUploadURLExternal")) == 2
    assert [f.id for f in slack_api.files] == [file_id]


def test_a_dm_upload_reaches_each_persons_dm_once(slack_client, slack_api):
    file_id = slack_client.upload_dm("statement:2027-05", ["U0ALICE", "U0BOB"], filename="statement-2027-05.csv", content=CSV, alt_text="May's statement", title="Statement for May")
    assert [c.args["users"] for c in slack_api.calls_to("conversations.open")] == ["U0ALICE", "U0BOB"]
    [uploaded] = slack_api.files
    assert uploaded.channels == ["D0ALICE", "D0BOB"] and uploaded.mimetype == "text/csv"
    for dm in ("D0ALICE", "D0BOB"):
        [message] = slack_api.channel_messages(dm)
        assert message.files[0]["id"] == file_id and message.files[0]["name"] == "statement-2027-05.csv"
    assert slack_client.upload_dm("statement:2027-05", ["U0ALICE", "U0BOB"], filename="statement-2027-05.csv", content=CSV, alt_text="May's statement", title="Statement for May") == file_id
    assert len(slack_api.calls_to("conversations.open")) == 2  # the retry asked Slack nothing


def test_a_private_upload_can_be_shown_in_an_app_home_image_block(slack_client, slack_api, slack_server, chart):
    png, alt = chart
    file_id = slack_client.upload("home-chart:U0ALICE", None, filename="spend.png", content=png, alt_text=alt, title="Spend")
    assert slack_api.files[0].channels == [] and not slack_api.messages
    home = {"type": "home", "blocks": [{"type": "image", "slack_file": {"id": file_id}, "alt_text": alt[:2000]}]}
    slack_client.client.views_publish(user_id="U0ALICE", view=home)
    assert slack_api.home["U0ALICE"]["blocks"][0]["slack_file"] == {"id": file_id}


def test_an_image_block_naming_an_unknown_or_non_image_file_is_refused(slack_client, slack_api):
    csv_id = slack_client.upload("csv:1", None, filename="statement.csv", content=CSV, alt_text="a statement", title="Statement")
    for file_id in ("F0NOSUCHFILE", csv_id):
        with pytest.raises(SlackApiError) as refused:
            slack_client.client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [{"type": "image", "slack_file": {"id": file_id}, "alt_text": "chart"}]})
        assert refused.value.response["error"] == "invalid_blocks"
    assert len(slack_api.invalid) == 2
    slack_api.invalid.clear()  # refused as Slack would: what this test is for


def test_no_upload_once_slack_took_the_access_away(db, slack_client, slack_api, chart):
    db.run(slack_access.revoked, "T0LOCAL", "tokens_revoked")
    with pytest.raises(SlackAccessLost):
        slack_client.upload("chart:gone", "C0GENERAL1", filename="spend.png", content=chart[0], alt_text=chart[1], title="Spend")
    assert not slack_api.calls


def test_the_double_answers_uploads_as_slack_documents(slack_api, slack_server):
    _, url = slack_server
    api = httpx.Client(base_url=url + "/api/", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    assert api.post("files.getUploadURLExternal", data={"filename": "a.png", "length": "0"}).json()["error"] == "missing_argument"
    assert api.post("files.getUploadURLExternal", data={"length": "10"}).json()["error"] == "missing_argument"
    assert api.post("files.getUploadURLExternal", data={"filename": "a.png", "length": "10", "alt_txt": "x" * 1001}).json()["error"] == "alt_txt_too_large"
    ticket = api.post("files.getUploadURLExternal", data={"filename": "a.csv", "length": "10"}).json()
    assert ticket["ok"] and ticket["file_id"].startswith("F")
    complete = {"files": json.dumps([{"id": ticket["file_id"], "title": "A"}]), "channel_id": "C0GENERAL1"}
    assert api.post("files.completeUploadExternal", data=complete).json()["error"] == "file_not_found"  # nothing uploaded yet
    # multipart, as curl -F sends it, and a length other than the one announced
    assert httpx.post(ticket["upload_url"], files={"file": ("a.csv", b"12345")}).status_code == 200
    assert api.post("files.completeUploadExternal", data=complete).json()["error"] == "file_update_failed"
    assert slack_api.invalid and "5 bytes uploaded, 10 announced" in slack_api.invalid[0][1]
    slack_api.invalid.clear()
    assert httpx.post(ticket["upload_url"], content=b"1234567890").text == "OK - 10"
    assert api.post("files.completeUploadExternal", data={**complete, "channels": "C1,C2", "thread_ts": "1.2"}).json()["error"] == "invalid_arguments"
    assert api.post("files.completeUploadExternal", data=complete).json() == {"ok": True, "files": [{"id": ticket["file_id"], "title": "A"}]}
    assert api.post("files.completeUploadExternal", data=complete).json()["error"] == "file_not_found"  # completes once
    history = api.post("conversations.history", data={"channel": "C0GENERAL1"}).json()
    assert history["messages"][0]["files"][0]["id"] == ticket["file_id"]
