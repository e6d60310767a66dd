"""An access review end to end: `/ai-team review`, the DM to the Admin, Keep / Revoke / Transfer clicked, the outcome and its CSV.

Clicks and the Transfer form reach the app signed as Slack sends them; the Slack double
refuses any message or modal Slack would (blocks, sizes), so the review's pages are checked too.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

from sqlalchemy import select

from bot.blocks.reviews import KEEP, REVOKE, TRANSFER, TRANSFER_FORM
from store.models import ApiKey, AuditEvent
from store.money import parse_money
from store.types import Role
from tests import factories as f
from tests.bot.conftest import TEAM
from tests.workers.test_actors import live_key
from workers import maintenance
from workers.clock import Clock


def dm(user) -> str:
    return "D" + user.slack_user_id[1:]


def page(slack_api, admin):
    """The review's one page in the Admin's DM (edited in place, never posted twice)."""
    [message] = [m for m in slack_api.channel_messages(dm(admin)) if m.text.startswith("Access review #") and " is complete: " not in m.text]
    return message


def button(message, action_id: str, showing: str) -> str:
    """The value of ``action_id``'s button under the item whose line shows ``showing``."""
    blocks = message.blocks
    for n, block in enumerate(blocks):
        if block["type"] == "section" and showing in block["text"]["text"] and n + 1 < len(blocks) and blocks[n + 1]["type"] == "actions":
            return next(e["value"] for e in blocks[n + 1]["elements"] if e["action_id"] == action_id)
    raise AssertionError(f"no {action_id} button under an item showing {showing!r}")


def click(slack, user, message, action_id: str, showing: str):
    value = button(message, action_id, showing)
    return slack.click(user.slack_user_id, action_id, value, channel=message.channel, message_ts=message.ts, blocks=message.blocks)


def pick(slack, user, view: dict, picked: str):
    """The Transfer form submitted with a person picked in its users_select, as Slack sends it."""
    state = {"values": {"to": {"value": {"type": "users_select", "selected_user": picked}}}}
    payload = {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": user.slack_user_id, "team_id": TEAM}, "api_app_id": "A0PURSER", "view": {**view, "state": state}}
    return slack.interaction(payload)


def told(slack_api, user) -> list[str]:
    return [m.text for m in slack_api.ephemeral if m.user == user.slack_user_id]


def test_an_admin_reviews_keeping_revoking_and_transferring_and_gets_the_outcome_as_csv(db, web, slack, slack_api, stub_workers):
    ws = f.workspace(db, "acme", "development", team_id=TEAM)
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    heir = f.member(db, ws, Role.DEVELOPER)
    stranger = f.member(db, f.workspace(db, "elsewhere", team_id=TEAM), Role.DEVELOPER)
    service = live_key(db, dev, ws, stub_workers, name="service")
    scratch = live_key(db, dev, ws, stub_workers, name="scratch")
    f.spend(db, service.id, parse_money("$12.50"))

    refused = slack.command(dev.slack_user_id, "/ai-team", "review --workspace acme")
    assert "Only an Admin can review who keeps access; you are a Developer." in refused.json()["text"]
    answer = slack.command(admin.slack_user_id, "/ai-team", "review --workspace acme")
    assert "is open: 3 member(s) and 2 key(s). Each Admin gets it by DM" in answer.json()["text"]
    stub_workers.settle()

    review = page(slack_api, admin)
    shown = json.dumps(review.blocks, ensure_ascii=False)
    assert "5 of 5 item(s) to decide" in shown and "`service`" in shown and "$12.50 spent" in shown and "last used" in shown
    assert [m for m in slack_api.channel_messages(dm(dev)) if m.text.startswith("Access review")] == []  # Admins only

    click(slack, dev, review, KEEP, "`scratch`")  # a Developer's click is refused, and says why
    assert any("Only an Admin can review who keeps access" in t for t in told(slack_api, dev))

    click(slack, admin, review, REVOKE, "`scratch`")
    keep_heir = button(review, KEEP, f"<@{heir.slack_user_id}> — Developer")
    slack.click(admin.slack_user_id, KEEP, keep_heir, channel=review.channel, message_ts=review.ts)
    slack.click(admin.slack_user_id, KEEP, keep_heir, channel=review.channel, message_ts=review.ts)  # a second click, before the page changed
    assert any(t.startswith("Already decided (kept) by") for t in told(slack_api, admin))

    click(slack, admin, review, TRANSFER, "`service`")
    [form] = [v for v in slack_api.views.values() if v.get("callback_id") == TRANSFER_FORM]
    outsider = pick(slack, admin, form, stranger.slack_user_id)
    assert outsider.json()["response_action"] == "errors" and "not a member of `acme`" in outsider.json()["errors"]["to"]
    assert pick(slack, admin, form, heir.slack_user_id).status_code == 200
    stub_workers.settle()

    heir_id = f.member_id(db, ws, heir)
    with db.session() as s:
        assert s.get(ApiKey, scratch.id).status.value == "revoked"
        moved = s.get(ApiKey, service.id)
        assert moved.member_id == heir_id and moved.status.value == "active"
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action.in_(["key.revoke", "key.transfer"])).order_by(AuditEvent.id)).all() == ["key.revoke", "key.transfer"]
    assert any("handed you key `service`" in m.blocks[0]["text"]["text"] for m in slack_api.channel_messages(dm(heir)))
    assert any(f"to <@{heir.slack_user_id}>" in m.blocks[0]["text"]["text"] for m in slack_api.channel_messages(dm(dev)) if "handed your key" in m.text)
    review = page(slack_api, admin)
    assert "2 of 5 item(s) to decide" in json.dumps(review.blocks, ensure_ascii=False) and review.updated >= 3

    click(slack, admin, review, KEEP, f"<@{admin.slack_user_id}> — Admin")
    click(slack, admin, review, KEEP, f"<@{dev.slack_user_id}> — Developer")
    stub_workers.settle()

    review = page(slack_api, admin)
    assert "Complete" in review.blocks[0]["text"]["text"] and not [b for b in review.blocks if b["type"] == "actions"]
    [outcome] = [m for m in slack_api.channel_messages(dm(admin)) if "is complete" in m.text]
    assert "3 kept, 1 revoked, 1 transferred" in outcome.text
    [upload] = [u for u in slack_api.files if u.filename.startswith("access-review-acme-")]
    rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
    assert sorted((r["kind"], r["key"], r["outcome"]) for r in rows) == [("key", "scratch", "revoke"), ("key", "service", "transfer"), ("member", "", "keep"), ("member", "", "keep"), ("member", "", "keep")]
    with db.session() as s:
        [done] = s.scalars(select(AuditEvent).where(AuditEvent.action == "review.complete"))
        assert done.details == {"items": 5, "keep": 3, "revoke": 1, "transfer": 1, "settled_elsewhere": 0}


def test_the_clock_opens_last_quarters_review_once_on_new_years_day_and_reminds_once_a_day(db, slack_api, stub_workers, clock):
    clock.move_to(datetime(2026, 11, 3, 9, 0, tzinfo=timezone.utc))
    ws = f.workspace(db, "acme", "development", team_id=TEAM)
    admin = f.member(db, ws, Role.ADMIN)
    clock.move_to(datetime(2027, 1, 1, 7, 0, tzinfo=timezone.utc))
    for _ in range(2):  # a job run twice opens one review
        maintenance.open_reviews.send()
        stub_workers.settle()
    review = page(slack_api, admin)
    assert "the quarter 2026-Q4" in review.blocks[0]["text"]["text"]
    clock.move_to(datetime(2027, 1, 2, 9, 30, tzinfo=timezone.utc))
    for _ in range(2):
        maintenance.remind_reviews.send()
        stub_workers.settle()
    [reminder] = [m for m in slack_api.channel_messages(dm(admin)) if "still undecided" in m.text]
    assert "still waits for 1 of 1 decision(s)" in reminder.blocks[0]["text"]["text"]
    jobs = Clock(lock=None).scheduler
    assert str(jobs.get_job("open_reviews").trigger) == "cron[hour='7', minute='0']" and str(jobs.get_job("remind_reviews").trigger) == "cron[hour='9', minute='30']"
