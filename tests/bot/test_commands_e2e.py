"""Every command over signed HTTP: its help, one bad input each, and the flows that are not about keys."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from bot.blocks.common import lit

from store import workspaces
from store.models import Member
from store.types import Role
from tests import factories as f
from tests.slack_requests import wait_for
from tests.slack_texts import REASONS, WORDS, quoted
from tests.usage_helpers import record

APPROVALS, ALERTS = "C0APPROVALS", "C0ALERTS"

BAD_INPUT = [
    ("/ai-key", "new --limit", "needs a value"),
    ("/ai-key", "fly", "is not something /ai-key does"),
    ("/ai-invite", "--role wizard U0SOMEONE1", "is not a role"),
    ("/ai-team", "role", "Say who and which role"),
    ("/ai-budget", "set search lots", "is not an amount of money"),
    ("/ai-budget", "raise search", "Say which project, how much more and for how long"),
    ("/ai-budget", 'raise search +$200 --reason "launch"', "Say for how long, in hours or days"),
    ("/ai-budget", 'raise search +$200 --for 3 --reason "launch"', "is not a duration. Write it in hours or days, like 12h or 3d"),
    ("/ai-budget", 'raise search +lots --for 3d --reason "launch"', "is not an amount of money"),
    ("/ai-credits", "add -5", "negative"),
    ("/ai-usage", "--days many", "--days takes a whole number"),
    ("/ai-audit", "recent lots", "takes a number"),
    ("/ai-workspace", "policy sometimes", "Say which policy"),
    ("/ai-workspace", "templates developer $50 --period bogus", "is not a period"),
    ("/ai-key", "rotate #99999999999999999999999", "No live key matches"),
    ("/ai-usage", "--days ²", "--days takes a whole number"),
    ("/ai-audit", "recent ٣", "takes a number"),
]


def team(db):
    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS, alerts=ALERTS)
    return ws, admin, dev


@pytest.mark.parametrize("command", ["/ai-key", "/ai-invite", "/ai-team", "/ai-budget", "/ai-credits", "/ai-usage", "/ai-audit", "/ai-workspace", "/ai-models"])
def test_every_command_has_help(db, slack, command):
    ws, admin, dev = team(db)
    answer = slack.command(admin, command, "help")
    assert answer.status_code == 200
    assert answer.json()["text"].startswith(f"*{command}*")


@pytest.mark.parametrize("command,text,expected", BAD_INPUT)
def test_bad_input_gets_a_usage_line_not_an_error(db, slack, command, text, expected):
    ws, admin, dev = team(db)
    answer = slack.command(admin, command, text)
    assert answer.status_code == 200
    assert expected in answer.json()["text"]
    assert "Traceback" not in answer.text and "error id" not in answer.text


def test_a_period_is_taken_as_people_type_it(db, slack):
    ws, admin, dev = team(db)
    answer = slack.command(admin, "/ai-workspace", "templates developer $50 --period Monthly")
    assert "Developer: keys up to $50.00 monthly" in answer.json()["text"], answer.json()["text"]


@pytest.mark.parametrize("text", ["<@U0NEWBIE1|dee> viewer", "viewer <@U0NEWBIE1|dee>", "<@U0NEWBIE1|dee> --role viewer"])
def test_a_role_typed_as_a_word_is_the_role_not_a_person(db, slack, text):
    from store.models import Invitation

    ws, admin, dev = team(db)
    answer = slack.command(admin, "/ai-invite", text).json()["text"]
    assert answer.count("\n") == 0 and "Invited U0NEWBIE1 as Viewer" in answer, answer  # one person, nobody called "viewer"
    with db.session() as s:
        [invitation] = s.scalars(select(Invitation).where(Invitation.workspace_id == ws))
    assert invitation.role is Role.VIEWER and invitation.invitee_slack_id == "U0NEWBIE1"


def test_two_roles_in_one_invitation_are_refused(db, slack):
    ws, admin, dev = team(db)
    answer = slack.command(admin, "/ai-invite", "<@U0NEWBIE1|dee> viewer --role admin").json()["text"]
    assert "Pick one role" in answer


def test_invite_then_accept_makes_a_member_with_the_role(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    answer = slack.command(admin, "/ai-invite", "<@U0NEWBIE1|newbie> --role viewer")
    assert "Invited" in answer.json()["text"]
    stub_workers.settle()
    [invitation] = slack_api.channel_messages("D0NEWBIE1")
    value = next(e["value"] for b in invitation.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "invitation_accept")
    slack.click("U0NEWBIE1", "invitation_accept", value, channel="D0NEWBIE1", message_ts=invitation.ts)
    assert "Welcome to `prod` as Viewer" in invitation.text
    with db.session() as s:
        member = s.scalars(select(Member).where(Member.slack_user_id == "U0NEWBIE1")).one()
        assert member.role is Role.VIEWER


def test_developer_invite_becomes_a_request_for_the_admins(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    answer = slack.command(dev, "/ai-invite", "<@U0FRIEND1|friend> ada@example.com")
    assert answer.json()["text"].count("Asked the admins") == 2
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    assert "Invitation request" in approval.text


def test_usage_crossing_80_percent_posts_one_alert_then_pause_and_resume(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    slack.command(admin, "/ai-budget", "set search $100")
    slack.command(admin, "/ai-workspace", "policy auto")
    slack.command(dev, "/ai-key", "new search-bot --project search --limit $10")
    stub_workers.settle()
    record(db, dev, "search-bot", "$85")
    stub_workers.settle()
    alerts = [m for m in slack_api.channel_messages(ALERTS) if "reached" in m.text]
    assert [a.text for a in alerts] == ["Project search reached 80% of its budget"]
    record(db, dev, "search-bot", "$15")
    stub_workers.settle()
    said = [m.text for m in slack_api.channel_messages(ALERTS)]
    assert any("Project `search` is paused" in t for t in said)
    answer = slack.command(admin, "/ai-budget", "set search $200")
    assert "budget is $200.00" in answer.json()["text"]
    stub_workers.settle()
    assert any("running again" in m.text for m in slack_api.channel_messages(ALERTS))
    shown = slack.command(dev, "/ai-budget", "show").json()["text"]
    assert "$100.00 / $200.00" in shown


def test_budget_request_cap_and_credits_through_commands(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    billing = f.member(db, ws, Role.BILLING).slack_user_id
    assert "Created project" in slack.command(admin, "/ai-budget", "set search $100").json()["text"]
    assert "request #" in slack.command(dev, "/ai-budget", 'request search $300 --reason "launch week"').json()["text"]
    assert "spending cap of `prod` is $250.00" in slack.command(admin, "/ai-budget", "cap $250").json()["text"]
    answer = slack.command(admin, "/ai-budget", "cap $50")
    assert "more than the cap of $50.00" in answer.json()["text"]
    assert "Added $500.00" in slack.command(billing, "/ai-credits", "add $500").json()["text"]
    assert "$500.00" in slack.command(billing, "/ai-credits", "balance").json()["text"]
    assert "Only an Admin or Billing Manager" in slack.command(dev, "/ai-credits", "balance").json()["text"]


def test_team_audit_usage_and_workspace_commands(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    listed = slack.command(admin, "/ai-team", "list").json()["text"]
    assert f"<@{admin}> — Admin" in listed and f"<@{dev}> — Developer" in listed
    assert "request #" in slack.command(dev, "/ai-team", f"role <@{admin}|boss> viewer").json()["text"]
    assert "The audit chain verifies" in slack.command(admin, "/ai-audit", "verify").json()["text"]
    assert "`request.open`" in slack.command(admin, "/ai-audit", "recent 5").json()["text"]
    assert '"hash"' in slack.command(admin, "/ai-audit", "export jsonl").json()["text"]
    assert "Only an Admin can view the audit log" in slack.command(dev, "/ai-audit", "verify").json()["text"]
    assert "by project:* $0.00" in slack.command(dev, "/ai-usage", "").json()["text"]
    assert "Your spend, last 30 days, by project" in slack.command(dev, "/ai-usage", "--days 30 --no-chart").json()["text"]
    assert "`prod` (production) — Admin" in slack.command(admin, "/ai-workspace", "list").json()["text"]
    assert "203.0.113.0/24" in slack.command(admin, "/ai-workspace", "allowlist add 203.0.113.0/24").json()["text"]
    assert "is not an IP address" in slack.command(admin, "/ai-workspace", "allowlist add nowhere").json()["text"]
    assert "Role presets" in slack.command(admin, "/ai-workspace", "templates developer $75 --lifetime 30").json()["text"]
    created = slack.command(admin, "/ai-workspace", "create staging --env staging").json()["text"]
    assert "Created `staging`" in created
    # Now in two workspaces: a command without -w asks which, unless the channel is bound.
    assert "more than one workspace" in slack.command(admin, "/ai-team", "list").json()["text"]
    assert "now act on `staging`" in slack.command(admin, "/ai-workspace", "use staging", channel="C0STAGING").json()["text"]
    assert f"<@{admin}> — Admin" in slack.command(admin, "/ai-team", "list", channel="C0STAGING").json()["text"]


def test_key_form_opens_with_no_arguments_and_submits(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    answer = slack.command(dev, "/ai-key", "new")
    assert answer.status_code == 200
    [form] = slack_api.views.values()
    assert form["callback_id"] == "key_new"
    bad = slack.submit(dev, form, {"name": "ok-name", "limit": "lots"})
    assert bad.json()["response_action"] == "errors" and "limit" in bad.json()["errors"]
    good = slack.submit(dev, form, {"name": "from-form", "limit": "$12"})
    assert good.status_code == 200 and not good.content
    stub_workers.settle()
    assert any("from-form" in m.text for m in slack_api.channel_messages(APPROVALS))
    assert "request #" in slack_api.ephemeral[-1].text


def test_app_home_shows_keys_pending_requests_and_budgets(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    slack.command(admin, "/ai-budget", "set search $100")
    slack.command(dev, "/ai-key", "new search-bot --project search")
    stub_workers.settle()
    slack.event({"type": "app_home_opened", "user": admin, "tab": "home"})
    home = str(wait_for(lambda: slack_api.home.get(admin))["blocks"])
    assert "Waiting for a decision" in home and "request_approve" in home and "search" in home
    slack.event({"type": "app_home_opened", "user": dev, "tab": "home"})
    assert "Your keys" in str(wait_for(lambda: slack_api.home.get(dev))["blocks"])


def test_channels_are_bound_as_slack_sends_them(db, slack):
    ws, admin, dev = team(db)
    answer = slack.command(admin, "/ai-workspace", "channels approvals=<#C0NEWAPPR|ai-approvals> audit=<#C0NEWAUDIT|>").json()["text"]
    assert "approvals <#C0NEWAPPR>" in answer and "audit <#C0NEWAUDIT>" in answer, answer
    plain = slack.command(admin, "/ai-workspace", "channels approvals=#ai-approvals").json()["text"]
    assert "plain text, not as a link" in plain and "error id" not in plain


def test_a_request_with_no_approvals_channel_goes_to_the_admins_directly(db, slack, slack_api, stub_workers):
    ws = f.workspace(db, "bare", "production")  # no channels bound
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    answer = slack.command(dev, "/ai-key", "new search-bot -w bare").json()["text"]
    assert "request #" in answer
    stub_workers.settle()
    [asked] = slack_api.channel_messages("D" + admin[1:])
    assert "request_approve" in str(asked.blocks)
    [told] = slack_api.channel_messages("D" + dev[1:])
    assert "no approvals channel" in told.text and "its Admins directly" in told.text


# -- real formats: tests/slack_texts.py ---------------------------------------------------------


@pytest.mark.parametrize("word", [w for w in WORDS if w.sent.startswith("approvals=")], ids=lambda w: w.sent)
def test_a_channel_word_binds_as_slack_sends_it(db, slack, word):
    ws, admin, dev = team(db)
    answer = slack.command(admin, "/ai-workspace", f"channels {word.sent}").json()["text"]
    assert f"approvals <#{word.read.split('=')[1]}>" in answer, answer


@pytest.mark.parametrize("reason", REASONS, ids=lambda w: w.sent)
def test_a_reason_reaches_the_approvers_as_it_was_typed(db, slack, slack_api, stub_workers, reason):
    """Slack's escaping is undone once on the way in and done once on the way out: never twice."""
    ws, admin, dev = team(db)
    assert "request #" in slack.command(dev, "/ai-key", f"new search-bot --reason {quoted(reason.sent, curly=True)}").json()["text"]
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    shown = json.dumps(approval.blocks, ensure_ascii=False)
    assert json.dumps(lit(reason.typed), ensure_ascii=False)[1:-1] in shown, shown
    assert "&amp;amp;" not in shown and "&amp;lt;" not in shown
    if reason.sent != reason.typed:  # Slack's own form (a live link, a mention) never comes back out
        assert json.dumps(reason.sent)[1:-1] not in shown


def test_a_name_as_shown_can_be_typed_back(db, slack, stub_workers):
    """Names are shown in code spans, character for character, so copying one into a command works."""
    ws, admin, dev = team(db)
    db.run(workspaces.set_key_policy, f.OPERATOR, ws, "auto")  # made through Slack: the running workers provision it
    assert "Approved" in slack.command(dev, "/ai-key", "new snake_case_key").json()["text"]
    stub_workers.settle()
    listing = slack.command(dev, "/ai-key", "list").json()["text"]
    shown = re.search(r"`(snake\S*)`", listing)
    assert shown and shown.group(1) == "snake_case_key", listing
    answer = slack.command(dev, "/ai-key", f"revoke {shown.group(1)}").json()["text"]
    assert "Revoked" in answer or "revoked" in answer, answer


def test_a_long_answer_is_shown_whole(db, slack):
    """`/ai-audit recent 200` shows 200 events: a long answer goes in several sections, never cut at 3,000 characters."""
    ws, admin, dev = team(db)
    for n in range(210):
        db.run(workspaces.set_channels, f.OPERATOR, ws, alerts=f"C0ALERT{n:04d}")
    body = slack.command(admin, "/ai-audit", "recent 200").json()
    shown = "\n".join(b["text"]["text"] for b in body["blocks"])
    events = [line for line in shown.splitlines() if line.startswith("• #")]
    assert len(events) == 200 and all(len(b["text"]["text"]) <= 3000 for b in body["blocks"])


def test_an_admin_deletes_a_workspace_from_slack_after_typing_its_name(db, slack, stub_workers):
    from store.models import ApiKey, Request, Workspace
    from store.types import KeyStatus, WorkspaceStatus

    ws, admin, _ = team(db)
    owner = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_key_policy, f.OPERATOR, ws, "auto")
    assert "Approved" in slack.command(owner.slack_user_id, "/ai-key", "new live-one").json()["text"]
    db.run(workspaces.set_key_policy, f.OPERATOR, ws, "approval")
    assert "request #" in slack.command(owner.slack_user_id, "/ai-key", "new waiting-one").json()["text"]
    stub_workers.settle()
    refused = slack.command(owner.slack_user_id, "/ai-workspace", "delete prod --confirm prod").json()["text"]
    assert "Only an Admin" in refused
    preview = slack.command(admin, "/ai-workspace", "delete prod").json()["text"]
    assert "revokes its 1 live key(s)" in preview and "1 pending request(s)" in preview and "--confirm prod" in preview, preview
    wrong = slack.command(admin, "/ai-workspace", "delete prod --confirm prd").json()["text"]
    assert "is not the workspace's name" in wrong
    with db.session() as s:
        assert s.get(Workspace, ws).status is WorkspaceStatus.ACTIVE
    done = slack.command(admin, "/ai-workspace", "delete prod --confirm prod").json()["text"]
    assert "Deleted `prod`: 1 key(s) revoked, 1 request(s)" in done, done
    with db.session() as s:
        assert s.get(Workspace, ws).status is WorkspaceStatus.DELETED
        assert {k.status for k in s.scalars(select(ApiKey).where(ApiKey.workspace_id == ws))} == {KeyStatus.REVOKED}
        assert [r.state.value for r in s.scalars(select(Request).where(Request.workspace_id == ws).order_by(Request.id))] == ["approved", "cancelled"]
    assert "not a member" in slack.command(admin, "/ai-key", "list -w prod").json()["text"] or "no workspace" in slack.command(admin, "/ai-key", "list -w prod").json()["text"]
