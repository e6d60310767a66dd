"""When Slack refuses: each error in its own plain words with its fix, nothing left waiting for nobody."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store.models import AuditEvent, Invitation, Request
from store.types import InvitationStatus
from tests.bot.test_commands_e2e import APPROVALS, team
from workers.slack_errors import PERMANENT


def dm(user: str) -> str:
    return "D" + user[1:]


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def audit_actions(db, prefix: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.action.like(prefix + "%")).order_by(AuditEvent.seq)))


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found", "is_archived"])
def test_an_approval_post_slack_refuses_reaches_the_admins_and_can_still_be_decided(db, slack, slack_api, stub_workers, error):
    ws, admin, dev = team(db)
    slack_api.fail("chat.postMessage", error=error)
    assert "request #" in slack.command(dev, "/ai-key", "new search-bot").json()["text"]
    stub_workers.settle()
    assert not slack_api.channel_messages(APPROVALS)
    what, fix = PERMANENT[error]
    # the Admin: told why, with the request to decide right there
    [asked] = slack_api.channel_messages(dm(admin))
    shown = str(asked.blocks)
    assert what in shown and f"`{error}`" in shown and "request_approve" in shown
    # the requester: the same plain sentence, and that the request is not lost
    [told] = [m for m in slack_api.channel_messages(dm(dev)) if "could not" in m.text]
    assert what in told.text and f"`{error}`" in told.text and "ˍ" not in told.text
    assert "still waiting" in str(told.blocks)
    # the Admin decides from the DM; the DM shows the decision and loses its buttons
    assert slack.click(admin, "request_approve", buttons(asked)["request_approve"], channel=dm(admin), message_ts=asked.ts).status_code == 200
    stub_workers.settle()
    with db.session() as s:
        assert s.scalars(select(Request.state).where(Request.workspace_id == ws)).one() == "approved"
    assert "request_approve" not in str(asked.blocks) and "Approved" in str(asked.blocks)
    assert any("is ready" in m.text for m in slack_api.channel_messages(dm(dev)))


def test_slack_errors_are_told_apart():
    """The token's errors are the operator's to fix; a channel's are an Admin's. No two read alike."""
    sentences = [what for what, _ in PERMANENT.values()]
    assert len(set(sentences)) == len(sentences)
    assert "SLACK_BOT_TOKEN" in PERMANENT["invalid_auth"][1] and "SLACK_BOT_TOKEN" not in PERMANENT["not_in_channel"][1]


def test_an_email_invitation_to_nobody_says_so_and_is_withdrawn(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    answer = slack.command(admin, "/ai-invite", "<mailto:nobody@example.com|nobody@example.com>").json()["text"]
    assert "Invited" not in answer and "Inviting nobody@example.com" in answer and "withdrawn" in answer, answer
    stub_workers.settle()
    with db.session() as s:
        [invitation] = s.scalars(select(Invitation).where(Invitation.workspace_id == ws))
        assert invitation.status is InvitationStatus.CANCELLED
    assert audit_actions(db, "invitation.") == ["invitation.undeliverable"]
    [told] = slack_api.channel_messages(dm(admin))
    assert "nobody in this Slack has the e-mail" in told.text and "withdrawn" in str(told.blocks)
    # …and the same address can be invited again, once they have joined Slack
    again = slack.command(admin, "/ai-invite", "nobody@example.com").json()["text"]
    assert "already has an invitation" not in again and "Inviting" in again


def test_an_email_invitation_found_in_slack_is_bound_to_them_with_its_audit_event(db, slack, slack_api, stub_workers):
    ws, admin, dev = team(db)
    slack_api.users["U0FOUNDBYMAIL"] = {"name": "ada", "email": "ada.found@example.com"}
    try:
        slack.command(admin, "/ai-invite", "ada.found@example.com --role viewer")
        stub_workers.settle()
    finally:
        del slack_api.users["U0FOUNDBYMAIL"]
    with db.session() as s:
        [invitation] = s.scalars(select(Invitation).where(Invitation.workspace_id == ws))
        assert invitation.invitee_slack_id == "U0FOUNDBYMAIL" and invitation.status is InvitationStatus.PENDING
    assert audit_actions(db, "invitation.") == ["invitation.match"]
    assert slack_api.channel_messages(dm("U0FOUNDBYMAIL"))
