"""Spend you can see, over HTTP: /ai-usage breakdowns by role with a chart in the asker's DM,
the chart on App Home, and the weekly digest's chart — through the validating Slack double."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from store import workspaces
from store.ingest import UsageIn, ingest_usage
from store.models import ApiKey
from store.money import parse_money
from store.types import Role, utcnow
from tests import factories as f
from tests.slack_requests import wait_for
from workers import maintenance

USD = parse_money
AUDIT = "C0AUDIT"


def dm(user: str) -> str:
    return "D" + user[1:]


@pytest.fixture
def team(db, slack, stub_workers):
    """A development workspace: two developers with keys on two projects, a viewer; spend by model over three days."""
    ws = f.workspace(db, "dev", "development")
    f.member(db, ws, Role.ADMIN)
    ann, bob = f.member(db, ws, Role.DEVELOPER).slack_user_id, f.member(db, ws, Role.DEVELOPER).slack_user_id
    viewer = f.member(db, ws, Role.VIEWER).slack_user_id
    f.project(db, ws, "search", budget=USD("$500"))
    f.project(db, ws, "chat")
    slack.command(ann, "/ai-key", "new ann-bot --project search")
    slack.command(bob, "/ai-key", "new bob-bot --project chat")
    stub_workers.settle()
    with db.session() as s:
        keys = {name: key_id for name, key_id in s.execute(select(ApiKey.name, ApiKey.id))}
    now = utcnow()
    events = []
    for day in range(3):
        at = max(now - timedelta(days=day), now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
        events.append(UsageIn(f"a{day}", keys["ann-bot"], USD("$2.50"), at, model="openai/gpt-4o", prompt_tokens=1000, completion_tokens=200))
        events.append(UsageIn(f"b{day}", keys["bob-bot"], USD("$1.25"), at, model="anthropic/claude-3.5-sonnet", prompt_tokens=400, completion_tokens=100))
    db.run(ingest_usage, events)
    return ws, ann, bob, viewer


def uploads_to(slack_api, channel: str):
    return [u for u in slack_api.files if channel in u.channels]


def test_a_viewer_sees_the_workspace_by_model_and_gets_the_chart_in_their_dm(slack, slack_api, stub_workers, team):
    ws, ann, bob, viewer = team
    reply = slack.command(viewer, "/ai-usage", "--by model").json()["text"]
    assert "`dev` spend" in reply and "by model:* $11.25" in reply
    assert "`openai/gpt-4o` — $7.50 (3 calls, 3,600 tokens)" in reply
    assert "`anthropic/claude-3.5-sonnet` — $3.75 (3 calls, 1,500 tokens)" in reply
    assert "on its way to your DM" in reply
    stub_workers.settle()
    [chart] = uploads_to(slack_api, dm(viewer))
    png = slack_api.file_bytes(chart.id)
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert "Spent so far: $11.25" in chart.alt_txt and "openai/gpt-4o $7.50" in chart.alt_txt
    [asked] = slack_api.calls_to("files.getUploadURLExternal")
    assert asked.args["alt_txt"] == chart.alt_txt and int(asked.args["length"]) == len(png)
    assert len(slack_api.calls_to("files.completeUploadExternal")) == 1
    assert slack_api.invalid == []


def test_a_developer_sees_only_their_own_keys(slack, slack_api, stub_workers, team):
    ws, ann, bob, viewer = team
    reply = slack.command(ann, "/ai-usage", "--by key --period month").json()["text"]
    assert reply.startswith("*Your spend") and "ann-bot" in reply and "bob-bot" not in reply and "$7.50" in reply
    stub_workers.settle()
    [chart] = uploads_to(slack_api, dm(ann))
    assert "Spent so far: $7.50" in chart.alt_txt and "chat" not in chart.alt_txt


@pytest.mark.parametrize(
    "text, said",
    [
        ("--period fortnight", "Say which period (--period): day, week, month, last-month"),
        ("--by colour", "Say which breakdown (--by): project, member, key, model"),
        ("--period day --days 3", "Give --period or --days, not both"),
        ("--project nowhere", "There is no project `nowhere` in `dev`"),
    ],
)
def test_bad_options_say_what_to_write(slack, slack_api, stub_workers, team, text, said):
    ws, ann, bob, viewer = team
    assert said in slack.command(viewer, "/ai-usage", text).json()["text"]
    stub_workers.settle()
    assert slack_api.files == []


def test_no_chart_is_text_only(slack, slack_api, stub_workers, team):
    ws, ann, bob, viewer = team
    reply = slack.command(viewer, "/ai-usage", "--period last-month --no-chart").json()["text"]
    assert "Nothing spent." in reply and "DM" not in reply
    stub_workers.settle()
    assert slack_api.files == []


def test_app_home_shows_this_months_chart_once_a_worker_has_drawn_it(slack, slack_api, stub_workers, team):
    ws, ann, bob, viewer = team
    slack.event({"type": "app_home_opened", "user": viewer, "tab": "home"})
    first = wait_for(lambda: slack_api.calls_to("views.publish"))[-1].args["view"]  # Bolt acks the event first
    assert '"image"' not in str(first)
    stub_workers.settle()  # the chart is drawn, uploaded privately and the Home published again
    view = slack_api.calls_to("views.publish")[-1].args["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    [image] = [b for b in view["blocks"] if b["type"] == "image"]
    drawn = slack_api.image_file(image["slack_file"]["id"])
    assert drawn is not None and drawn.channels == []
    assert "Spent so far: $11.25" in image["alt_text"] and "search budget $500" in image["alt_text"]
    # Opened again within the hour: the same chart, nothing drawn again.
    slack.event({"type": "app_home_opened", "user": viewer, "tab": "home"})
    wait_for(lambda: len(slack_api.calls_to("views.publish")) == 3)
    stub_workers.settle()
    assert len(slack_api.files) == 1 and len(slack_api.calls_to("views.publish")) == 3
    assert slack_api.invalid == []


def test_the_weekly_digest_carries_the_months_chart_in_its_thread_and_a_failed_chart_keeps_the_text(db, slack_api, stub_workers, team, monkeypatch):
    ws, ann, bob, viewer = team
    db.run(workspaces.set_channels, f.OPERATOR, ws, audit_channel=AUDIT)
    db.run(workspaces.set_digest, f.OPERATOR, ws, "weekly")
    maintenance.post_digest.send(ws, (utcnow() + timedelta(days=1)).isoformat())
    stub_workers.settle()
    [digest] = [m for m in slack_api.channel_messages(AUDIT) if not m.files]
    [chart] = uploads_to(slack_api, AUDIT)
    [shared] = [m for m in slack_api.channel_messages(AUDIT) if m.files]
    assert shared.thread_ts == digest.ts and "Spent so far: $11.25" in chart.alt_txt

    def broken(chart):
        raise RuntimeError("no fonts today")

    monkeypatch.setattr("workers.handlers.charts.render_spend", broken)
    maintenance.post_digest.send(ws, (utcnow() + timedelta(days=8)).isoformat())
    stub_workers.settle()
    assert len([m for m in slack_api.channel_messages(AUDIT) if not m.files]) == 2  # the next week's digest text, without its chart
    assert len(uploads_to(slack_api, AUDIT)) == 1
