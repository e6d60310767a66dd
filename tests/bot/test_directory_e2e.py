"""Offboarding from Slack's own signals: a deactivated account's keys stop in every workspace, at once.

Events reach the app signed as Slack sends them; the Slack double validates what Purser
posts; the OpenRouter fake shows what happened to the keys there.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select

from store import workspaces
from store.models import ApiKey, AuditEvent, Member, Request
from store.types import KeyStatus, MemberStatus, RequestState, Role
from tests import factories as f
from tests.bot.conftest import TEAM
from tests.slack_requests import wait_for
from workers import directory

APPROVALS = "C0APPROVALS"


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def dm(user: str) -> str:
    return "D" + user[1:]


def authz(web, secret: str) -> httpx.Response:
    return httpx.get(web.url + "/v1/authz", headers={"Authorization": f"Bearer {secret}"})


def two_workspaces(db, slack, slack_api, stub_workers, fake):
    """A Developer with a local key in `alpha` (and a request waiting there) and an OpenRouter key in `bravo`."""
    alpha = f.workspace(db, "alpha", "production", team_id=TEAM)
    bravo = f.workspace(db, "bravo", "development", team_id=TEAM, provider="openrouter")
    admin = f.member(db, alpha, Role.ADMIN).slack_user_id
    f.member(db, bravo, Role.ADMIN, slack_user_id=admin)
    dev = f.member(db, alpha, Role.DEVELOPER).slack_user_id
    f.member(db, bravo, Role.DEVELOPER, slack_user_id=dev)
    db.run(workspaces.set_channels, f.OPERATOR, alpha, approvals=APPROVALS)
    slack.command(dev, "/ai-key", "new one -w alpha")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    slack.click(admin, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts)
    slack.command(dev, "/ai-key", "new two -w alpha")  # left waiting
    slack.command(dev, "/ai-key", "new three -w bravo")
    stub_workers.settle()
    [ready] = [m for m in slack_api.channel_messages(dm(dev)) if "is ready" in m.text and "`one`" in str(m.blocks)]
    slack.click(dev, "key_reveal", buttons(ready)["key_reveal"], channel=dm(dev), message_ts=ready.ts)
    [modal] = slack_api.views.values()
    local_secret = [b["text"]["text"] for b in modal["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text"][0]
    with db.session() as s:
        ref = s.scalars(select(ApiKey.provider_ref).where(ApiKey.name == "three")).one()
    return alpha, bravo, admin, dev, local_secret, ref


def test_a_deactivated_developer_is_suspended_everywhere_and_an_admin_can_restore_them(db, web, slack, slack_api, stub_workers, openrouter):
    fake = openrouter
    alpha, bravo, admin, dev, secret, ref = two_workspaces(db, slack, slack_api, stub_workers, fake)
    openrouter_secret = fake.secrets[ref]
    assert authz(web, secret).status_code == 200 and authz(web, openrouter_secret).status_code == 200 and not fake.keys[ref]["disabled"]

    slack.event({"type": "user_change", "user": {"id": dev, "team_id": TEAM, "deleted": True, "name": "dev"}})
    refused = wait_for(lambda: (r := authz(web, secret)).status_code == 401 and r, timeout=5)
    assert refused.headers["X-Purser-Refusal"] == "owner_suspended"
    assert authz(web, openrouter_secret).headers["X-Purser-Refusal"] == "owner_suspended"  # both keys, both workspaces
    stub_workers.settle()
    assert fake.keys[ref]["disabled"] is True  # at OpenRouter too
    with db.session() as s:
        assert {m.workspace_id: m.status for m in s.scalars(select(Member).where(Member.slack_user_id == dev))} == {alpha: MemberStatus.SUSPENDED, bravo: MemberStatus.SUSPENDED}
        [waiting] = s.scalars(select(Request).where(Request.payload["name"].as_string() == "two")).all()
        assert waiting.state is RequestState.CANCELLED
        suspended = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.suspend")).all()
        assert sorted(e.workspace_id for e in suspended) == [alpha, bravo] and all(e.actor == "system:slack-directory" for e in suspended)
    [told] = [m for m in slack_api.channel_messages(APPROVALS) if "suspended" in m.text]  # alpha: its approvals channel
    assert [m for m in slack_api.channel_messages(dm(admin)) if "suspended" in m.text]  # bravo has none: its Admins by DM

    # a reactivated account restores nobody by itself
    slack.event({"type": "user_change", "user": {"id": dev, "team_id": TEAM, "deleted": False, "name": "dev"}})
    stub_workers.settle()
    assert authz(web, secret).status_code == 401

    slack.click(admin, "member_restore", buttons(told)["member_restore"], channel=APPROVALS, message_ts=told.ts)
    stub_workers.settle()
    assert authz(web, secret).status_code == 200
    assert "Restored by" in str(told.blocks) and "member_restore" not in buttons(told)
    assert fake.keys[ref]["disabled"] is True  # bravo's membership waits for bravo's Admin


def test_a_guest_conversion_suspends_too_and_a_viewer_cannot_restore(db, web, slack, slack_api, stub_workers, openrouter):
    alpha, bravo, admin, dev, secret, ref = two_workspaces(db, slack, slack_api, stub_workers, openrouter)
    viewer = f.member(db, alpha, Role.VIEWER).slack_user_id
    slack.event({"type": "user_change", "user": {"id": dev, "team_id": TEAM, "deleted": False, "is_restricted": True}})
    wait_for(lambda: authz(web, secret).status_code == 401, timeout=5)
    stub_workers.settle()
    [told] = [m for m in slack_api.channel_messages(APPROVALS) if "suspended" in m.text]
    assert "guest" in str(told.blocks)
    slack.click(viewer, "member_restore", buttons(told)["member_restore"], channel=APPROVALS, message_ts=told.ts)
    stub_workers.settle()
    assert authz(web, secret).status_code == 401 and "member_restore" in buttons(told)


def test_the_directory_sync_finds_a_deactivation_whose_event_was_lost(db, web, slack, slack_api, stub_workers, openrouter):
    alpha, bravo, admin, dev, secret, ref = two_workspaces(db, slack, slack_api, stub_workers, openrouter)
    slack_api.users.update({admin: {"name": "admin"}, dev: {"name": "dev", "deleted": True}, "U0ELSEWHERE": {"name": "x", "deleted": True}})
    suspended, complete = directory.sync(db, stub_workers.rt.slack.client, TEAM)
    assert complete and suspended == [dev]
    assert authz(web, secret).status_code == 401
    stub_workers.settle()
    assert openrouter.keys[ref]["disabled"] is True
    assert directory.sync(db, stub_workers.rt.slack.client, TEAM) == ([], True)  # nothing twice


def test_a_listing_that_fails_halfway_changes_nothing(db, web, slack, slack_api, stub_workers, openrouter, monkeypatch):
    alpha, bravo, admin, dev, secret, ref = two_workspaces(db, slack, slack_api, stub_workers, openrouter)
    slack_api.users.update({admin: {"name": "admin"}, "U0AAA": {"name": "a"}, dev: {"name": "dev", "deleted": True}})
    monkeypatch.setattr(directory, "PAGE", 1)
    real = stub_workers.rt.slack.client

    class FailsAfterTheFirstPage:
        def users_list(self, **kwargs):
            page = real.users_list(**kwargs)
            slack_api.fail("users.list", status=500, times=10)  # more than the client's retries
            return page

    assert directory.sync(db, FailsAfterTheFirstPage(), TEAM) == ([], False)
    assert authz(web, secret).status_code == 200
    with db.session() as s:
        assert s.scalars(select(Member.status).where(Member.slack_user_id == dev)).all() == [MemberStatus.ACTIVE, MemberStatus.ACTIVE]
        assert s.scalars(select(ApiKey.status).where(ApiKey.name == "one")).one() is KeyStatus.ACTIVE
