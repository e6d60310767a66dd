"""An approval policy set and followed through Slack: signed requests to the running app, the workers running, the validating Slack double."""

from __future__ import annotations

from sqlalchemy import func, select

from store import workspaces
from store.models import ApiKey
from store.types import Role
from tests import factories as f
from tests.bot.test_keys_e2e import ALERTS, APPROVALS, buttons, dm
from tests.slack_requests import wait_for

PRODUCTION_POLICY = "key over $500: 2 admins + billing; key: 2 admins"


def production(db) -> tuple[int, dict[str, str]]:
    ws = f.workspace(db, "prod", "production")
    roles = {"ada": Role.ADMIN, "bo": Role.ADMIN, "cy": Role.ADMIN, "bill": Role.BILLING, "dev": Role.DEVELOPER}
    people = {name: f.member(db, ws, role).slack_user_id for name, role in roles.items()}
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS, alerts=ALERTS)
    return ws, people


def keys_made(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(ApiKey))


def test_two_admins_and_a_billing_manager_approve_a_large_key_one_click_each_and_one_key_is_made(db, slack, slack_api, stub_workers):
    _, p = production(db)
    answer = slack.command(p["ada"], "/ai-workspace", f"policy set {PRODUCTION_POLICY}").json()["text"]
    assert "1. `key over $500.00: 2 Admins + 1 Billing Manager`" in answer and "2. `key: 2 Admins`" in answer, answer
    assert "4. `any: 1 Admin`" in answer  # then the defaults of an approval workspace

    slack.command(p["dev"], "/ai-key", "new big --limit $600")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    assert "0 of 2 Admins · Billing Manager needed" in str(approval.blocks)
    value = buttons(approval)["request_approve"]

    def approve(who: str) -> None:
        assert slack.click(p[who], "request_approve", value, channel=APPROVALS, message_ts=approval.ts).status_code == 200
        stub_workers.settle()

    approve("ada")
    shown = str(approval.blocks)
    assert "1 of 2 Admins · Billing Manager needed" in shown and f"Approved by <@{p['ada']}> (Admin)" in shown
    assert "request_approve" in shown and "request_deny" in shown  # the buttons stay until the outcome
    assert slack_api.ephemeral[-1].user == p["ada"] and "still needs an Admin and a Billing Manager" in slack_api.ephemeral[-1].text

    updated = approval.updated
    approve("ada")  # the same Admin again
    assert slack_api.ephemeral[-1].user == p["ada"] and "You already approved request #" in slack_api.ephemeral[-1].text
    assert approval.updated == updated and keys_made(db) == 0

    approve("bo")
    assert "2 of 2 Admins ✓ · Billing Manager needed" in str(approval.blocks)
    approve("cy")  # a third Admin adds nothing the request waits for
    assert "has all the Admin approvals it needs; it still needs a Billing Manager" in slack_api.ephemeral[-1].text
    assert keys_made(db) == 0

    approve("bill")
    shown = str(approval.blocks)
    assert "Approved" in shown and f"<@{p['ada']}>, <@{p['bo']}>, <@{p['bill']}>" in shown
    assert "request_approve" not in shown
    assert keys_made(db) == 1
    assert any("is ready" in m.text for m in slack_api.channel_messages(dm(p["dev"])))
    approve("cy")  # a late click hears the outcome
    assert slack_api.ephemeral[-1].text.startswith("Already approved by") and keys_made(db) == 1


def test_a_key_within_the_policys_smaller_rule_needs_two_admins_and_the_requester_hears_nothing_twice(db, slack, slack_api, stub_workers):
    _, p = production(db)
    slack.command(p["ada"], "/ai-workspace", f"policy set {PRODUCTION_POLICY}")
    slack.command(p["dev"], "/ai-key", "new small --limit $20")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    assert "0 of 2 Admins" in str(approval.blocks) and "Billing Manager" not in str(approval.blocks)
    value = buttons(approval)["request_approve"]
    slack.click(p["bill"], "request_approve", value, channel=APPROVALS, message_ts=approval.ts)
    assert "Only an Admin can approve or deny requests; you are a Billing Manager" in slack_api.ephemeral[-1].text
    for who in ("ada", "bo"):
        slack.click(p[who], "request_approve", value, channel=APPROVALS, message_ts=approval.ts)
        stub_workers.settle()
    assert keys_made(db) == 1 and "request_approve" not in str(approval.blocks)


def test_policy_is_shown_to_members_changed_only_by_admins_and_bad_rules_are_explained(db, slack, slack_api, stub_workers):
    _, p = production(db)
    shown = slack.command(p["dev"], "/ai-workspace", "policy").json()["text"]
    assert "the defaults of key policy `approval`" in shown and "1. `key by admin: automatic`" in shown and "2. `any: 1 Admin`" in shown
    refused = slack.command(p["dev"], "/ai-workspace", "policy set key: admin").json()["text"]
    assert "Only an Admin can change who approves requests; you are a Developer." in refused
    bad = slack.command(p["ada"], "/ai-workspace", "policy set key: admin; key over lots: 2 admins").json()["text"]
    assert "Rule 2 (“key over lots: 2 admins”)" in bad and "is not an amount of money" in bad
    empty = slack.command(p["ada"], "/ai-workspace", "policy set").json()["text"]
    assert "Write the rules after `set`" in empty
    assert "who approves which requests" in slack.command(p["ada"], "/ai-workspace", "policy help").json()["text"]
    slack.command(p["ada"], "/ai-workspace", "policy set cap: admin + billing")
    reset = slack.command(p["ada"], "/ai-workspace", "policy reset").json()["text"]
    assert "cap:" not in reset and "1. `key by admin: automatic`" in reset
    slack.event({"type": "app_home_opened", "user": p["dev"], "tab": "home"})
    home = str(wait_for(lambda: slack_api.home.get(p["dev"]))["blocks"])
    assert "Approval policy" in home and "any: 1 Admin" in home


def test_a_billing_manager_finds_the_requests_waiting_for_them_in_app_home(db, slack, slack_api, stub_workers):
    _, p = production(db)
    slack.command(p["ada"], "/ai-workspace", f"policy set {PRODUCTION_POLICY}")
    slack.command(p["dev"], "/ai-key", "new big --limit $600")
    slack.command(p["dev"], "/ai-key", "new small --limit $20")
    stub_workers.settle()
    slack.event({"type": "app_home_opened", "user": p["bill"], "tab": "home"})
    home = str(wait_for(lambda: slack_api.home.get(p["bill"]))["blocks"])
    assert "Waiting for a decision* (1)" in home and "`big`" in home and "`small`" not in home
