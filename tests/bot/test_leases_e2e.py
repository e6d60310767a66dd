"""A leased key over HTTP: asked for with --for, warned a day ahead, extended through an Admin, then ended by the clock.

Commands and clicks reach the app signed, as Slack sends them; the fake Slack API validates
every message. The test's clock is moved to the lease's instants, and the clock's job
(``announce_leases``) is sent as the clock would send it.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from store import workspaces
from store.models import ApiKey, AuditEvent
from store.types import Role
from tests import factories as f
from workers import maintenance

APPROVALS = "C0APPROVALS"


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def dm(user: str) -> str:
    return "D" + user[1:]


def said(message) -> str:
    return message.text + str(message.blocks)


def test_a_leased_key_is_extended_through_an_admin_and_then_ends(db, web, slack, slack_api, stub_workers, clock):
    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS)

    answer = slack.command(dev, "/ai-key", "new temp --for 3d")
    assert "for 3 days once made" in answer.json()["text"]
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    assert "Lives for" in said(approval) and "3 days" in said(approval)
    slack.click(admin, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts)
    stub_workers.settle()
    [ready] = [m for m in slack_api.channel_messages(dm(dev)) if "is ready" in m.text]
    slack.click(dev, "key_reveal", buttons(ready)["key_reveal"], channel=dm(dev), message_ts=ready.ts)
    [modal] = slack_api.views.values()
    secret = next(b["text"]["text"] for b in modal["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text")
    with db.session() as s:
        key = s.scalars(select(ApiKey)).one()
    end = key.expires_at
    assert timedelta(days=3) - timedelta(minutes=1) < end - key.created_at <= timedelta(days=3)

    # A day ahead: one warning, whichever number of times the clock's job runs.
    clock.move_to(end - timedelta(hours=23))
    for _ in range(2):
        maintenance.announce_leases.send()
        stub_workers.settle()
    [warning] = [m for m in slack_api.channel_messages(dm(dev)) if "stops in a day" in m.text]
    assert "Extend by 3 days" in said(warning)

    slack.click(dev, "key_extend", buttons(warning)["key_extend"], channel=dm(dev), message_ts=warning.ts)
    stub_workers.settle()
    assert "Asked the Admins to extend" in warning.text and "key_extend" not in buttons(warning)
    [_, asked] = slack_api.channel_messages(APPROVALS)
    assert "Key extension request" in said(asked) and "3 days longer" in said(asked)
    slack.click(admin, "request_approve", buttons(asked)["request_approve"], channel=APPROVALS, message_ts=asked.ts)
    stub_workers.settle()
    new_end = end + timedelta(days=3)
    with db.session() as s:
        assert s.get(ApiKey, key.id).expires_at == new_end
    [outcome] = [m for m in slack_api.channel_messages(dm(dev)) if m.text.startswith("Your request #") and "approved" in m.text]
    assert f"now stops at {new_end:%Y-%m-%d %H:%M} UTC" in said(outcome)

    clock.move_to(end + timedelta(minutes=5))  # past the old end: still good
    assert httpx.get(web.url + "/v1/authz", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    clock.move_to(new_end + timedelta(seconds=30))
    maintenance.announce_leases.send()
    stub_workers.settle()
    refused = httpx.get(web.url + "/v1/authz", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401 and refused.headers["X-Purser-Refusal"] == "expired"
    [ended] = [m for m in slack_api.channel_messages(dm(dev)) if "its lease ended" in m.text]
    assert "key_extend" not in buttons(ended) and "ask for a new one" in said(ended)
    with db.session() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.resource == f"key:{key.id}", AuditEvent.action.in_(["key.extend", "key.expire"])).order_by(AuditEvent.seq)).all() == ["key.extend", "key.expire"]
