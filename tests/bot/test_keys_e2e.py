"""Signed requests over HTTP to the running app, with the workers running, against the fake Slack API."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from store import workspaces
from store.models import ApiKey, AuditEvent
from store.types import Role
from tests import factories as f

APPROVALS, ALERTS = "C0APPROVALS", "C0ALERTS"


def team(db, env="production"):
    ws = f.workspace(db, "prod" if env == "production" else "dev", env)
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS, alerts=ALERTS)
    return ws, admin.slack_user_id, dev.slack_user_id


def dm(user: str) -> str:
    return "D" + user[1:]


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def test_production_key_request_approved_provisioned_revealed_once(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    answer = slack.command(dev, "/ai-key", "new search-bot --limit $20")
    assert answer.status_code == 200 and "request #" in answer.json()["text"]
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    assert "$20.00" in str(approval.blocks)
    assert slack.click(admin, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts).status_code == 200
    stub_workers.settle()
    assert "Approved" in str(approval.blocks) and "request_approve" not in str(approval.blocks)
    [ready] = [m for m in slack_api.channel_messages(dm(dev)) if "is ready" in m.text]
    key_id = buttons(ready)["key_reveal"]
    slack.click(dev, "key_reveal", key_id, channel=dm(dev), message_ts=ready.ts)
    [modal] = slack_api.views.values()
    secret = [b["text"]["text"] for b in modal["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text"][0]
    assert secret.startswith("sk-purser-")
    # shown once: the message no longer offers a Reveal; a click on a stale copy is refused
    assert "key_reveal" not in buttons(ready) and "was revealed" in str(ready.blocks)
    slack.click(dev, "key_reveal", key_id, channel=dm(dev), message_ts=ready.ts)
    assert len(slack_api.views) == 1
    assert "already revealed" in slack_api.ephemeral[-1].text
    # The secret was shown once, in the modal, and nowhere else.
    everything = str([(m.text, m.blocks) for m in slack_api.messages.values()]) + str([(m.text, m.blocks) for m in slack_api.ephemeral])
    assert secret not in everything


def test_development_key_is_approved_without_asking(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db, "development")
    answer = slack.command(dev, "/ai-key", "new scratch")
    assert "Approved" in answer.json()["text"]
    stub_workers.settle()
    assert slack_api.channel_messages(APPROVALS) == []
    assert any("is ready" in m.text for m in slack_api.channel_messages(dm(dev)))


def test_deny_asks_for_a_reason_and_the_requester_reads_it(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    slack.command(dev, "/ai-key", "new big --limit $5,000")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    slack.click(admin, "request_deny", buttons(approval)["request_deny"], channel=APPROVALS, message_ts=approval.ts)
    [modal] = slack_api.views.values()
    assert modal["callback_id"] == "deny_reason"
    answer = slack.submit(admin, modal, {"reason": "too much for a test key"})
    assert answer.status_code == 200
    stub_workers.settle()
    assert "Denied" in str(approval.blocks)
    assert any("too much for a test key" in str(m.blocks) for m in slack_api.channel_messages(dm(dev)))


def test_viewer_asking_for_a_key_is_refused(db, slack, slack_api):
    ws, admin, dev = team(db)
    viewer = f.member(db, ws, Role.VIEWER).slack_user_id
    answer = slack.command(viewer, "/ai-key", "new mine")
    assert "Only an Admin or Developer can create API keys" in answer.json()["text"]


def test_viewer_clicking_approve_is_refused_and_nothing_changes(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    viewer = f.member(db, ws, Role.VIEWER).slack_user_id
    slack.command(dev, "/ai-key", "new search-bot")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    slack.click(viewer, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts)
    stub_workers.settle()
    assert "Only an Admin can approve or deny requests" in slack_api.ephemeral[-1].text
    assert slack_api.ephemeral[-1].user == viewer
    assert "request_approve" in str(approval.blocks)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.outcome == "denied")) == 1


def test_two_admins_approving_at_once_make_one_outcome_and_one_key(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    second = f.member(db, ws, Role.ADMIN).slack_user_id
    slack.command(dev, "/ai-key", "new search-bot")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    value = buttons(approval)["request_approve"]
    go = threading.Barrier(2)

    def click(user):
        go.wait()
        slack.click(user, "request_approve", value, channel=APPROVALS, message_ts=approval.ts)

    threads = [threading.Thread(target=click, args=(u,)) for u in (admin, second)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    stub_workers.settle()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1
    [late] = [m for m in slack_api.ephemeral if m.text.startswith("Already approved by")]
    assert late.user in (admin, second)


def test_a_reveal_whose_window_slack_could_not_open_keeps_the_secret_for_the_next_click(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db, "development")
    slack.command(dev, "/ai-key", "new scratch")
    stub_workers.settle()
    [ready] = [m for m in slack_api.channel_messages(dm(dev)) if "is ready" in m.text]
    key_id = buttons(ready)["key_reveal"]
    slack_api.fail("views.open", error="expired_trigger_id")  # as Slack answers a trigger_id older than 3 s
    slack.click(dev, "key_reveal", key_id, channel=dm(dev), message_ts=ready.ts)
    assert not slack_api.views and "still has it" in slack_api.ephemeral[-1].text
    slack.click(dev, "key_reveal", key_id, channel=dm(dev), message_ts=ready.ts)  # the next click shows it, once
    [modal] = slack_api.views.values()
    assert any(b["type"] == "section" and b["text"]["text"].startswith("sk-purser-") for b in modal["blocks"])
    slack.click(dev, "key_reveal", key_id, channel=dm(dev), message_ts=ready.ts)
    assert len(slack_api.views) == 1 and "already revealed" in slack_api.ephemeral[-1].text
    with db.session() as s:
        trail = list(s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("key.reveal%")).order_by(AuditEvent.id)))
    assert trail == ["key.reveal", "key.reveal_undone", "key.reveal"]


def test_a_paused_project_shows_as_paused_in_the_key_list_and_the_budgets(db, slack, stub_workers):
    from store import budgets, keys
    from store.money import parse_money

    ws, admin, dev = team(db, "development")
    f.project(db, ws, "search", budget=parse_money("$10"))
    f.project(db, ws, "chat")
    for name, project in (("search-bot", "search"), ("chat-bot", "chat")):  # approved at once; the workers make them
        db.run(keys.request_key, f.Actor.slack(dev), ws, name=name, project=project)
    stub_workers.settle()
    with db.session() as s:
        search_key = s.scalars(select(ApiKey.id).where(ApiKey.name == "search-bot")).one()
    f.spend(db, search_key, parse_money("$10"))
    listed = slack.command(dev, "/ai-key", "list").json()["text"]
    [search_line] = [line for line in listed.splitlines() if "search-bot" in line]
    [chat_line] = [line for line in listed.splitlines() if "chat-bot" in line]
    assert "paused: project `search` has spent its budget" in search_line and "paused" not in chat_line, listed
    shown = slack.command(admin, "/ai-budget", "show").json()["text"]
    assert "⏸️ paused" in [line for line in shown.splitlines() if "`search`" in line][0], shown
    db.run(budgets.pause_project, f.Actor.slack(admin), ws, "chat", "incident review")
    listed = slack.command(dev, "/ai-key", "list").json()["text"]
    assert "paused: project `chat` is paused by an admin" in listed, listed


def test_the_owner_hears_of_the_approval_in_the_dm_that_offers_the_key(db, slack, slack_api, stub_workers):
    """One DM per approved key: who approved it, and the Reveal button; nothing announces it separately."""
    ws, admin, _ = team(db)
    devs = [f.member(db, ws, Role.DEVELOPER).slack_user_id for _ in range(12)]
    for dev in devs:
        assert "request #" in slack.command(dev, "/ai-key", "new search-bot").json()["text"]
    stub_workers.settle()
    for approval in slack_api.channel_messages(APPROVALS):
        slack.click(admin, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts)
    stub_workers.settle()
    for dev in devs:
        [ready] = slack_api.channel_messages(dm(dev))
        assert "is ready" in ready.text and f"approved by <@{admin}>" in str(ready.blocks) and "key_reveal" in str(ready.blocks)
    for approval in slack_api.channel_messages(APPROVALS):
        assert "Approved" in str(approval.blocks) and "request_approve" not in str(approval.blocks)
