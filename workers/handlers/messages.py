"""Messages to people: approval messages and outcomes, invitations, and failure notices."""

from __future__ import annotations

from bot.blocks.failures import action_failed as failure_blocks
from bot.blocks.failures import undelivered_request
from bot.blocks.invitations import invitation_dm
from bot.blocks.common import section
from bot.blocks.requests import approval_message, outcome_dm
from store import invitations, outbox
from store.messages import find_message, messages_with_prefix
from store.models import Action, Invitation, Member, Workspace
from store.outbox import Claimed
from store.views import describe_invitation, describe_request
from workers.handlers import completes
from workers.providers.base import PermanentProviderError
from workers.runtime import Runtime


def request_opened(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        view = describe_request(s, a.payload["request_id"])
    # Approved by policy in the same transaction: nobody has anything to decide.
    if rt.slack is not None and view.state == "pending" and view.approvals_channel:
        text, blocks = approval_message(view)
        # Never an edit: by the time a retry runs, the message may already show the decision.
        rt.slack.post(f"request:{view.id}", view.approvals_channel, text, blocks, edit=False, also=completes(a))
        return
    if rt.slack is not None and view.state == "pending":
        _ask_admins_directly(rt, a, view)
        return
    rt.db.run(outbox.complete, a.id)


def _ask_admins_directly(rt: Runtime, a: Claimed, view) -> None:
    """No approvals channel: the request must not vanish. Each Admin gets it in a DM, and the requester hears where it went."""
    text, blocks = approval_message(view)
    for admin in view.deciders:
        rt.slack.dm(f"request:{view.id}:to:{admin}", admin, text, blocks)
    where = "sent it to its Admins directly" if view.deciders else "has no other Admin to decide it; ask the operator to add one"
    note = f"`{view.workspace}` has no approvals channel, so Purser {where}. An Admin can set one with `/ai-workspace channels approvals=#channel`."
    if view.requester:
        rt.slack.dm(f"request:{view.id}:nowhere", view.requester, note, [section(note)], also=completes(a))
    else:
        rt.db.run(outbox.complete, a.id)


def request_decided(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        view = describe_request(s, a.payload["request_id"])
        # A copy whose ts is not stored yet counts too: its post may be under way, or its
        # poster may have died after Slack took it, and the decision was perhaps made from
        # it. Slack.edit waits for the one, finds the other in the channel, and sends
        # nothing for a post Slack refused.
        in_channel = find_message(s, f"request:{view.id}") is not None
        dm_copies = [m.ref for m in messages_with_prefix(s, f"request:{view.id}:to:")]
    tell_requester = bool(view.requester and view.requester != view.decided_by)
    if rt.slack is not None and dm_copies:
        text, blocks = approval_message(view)
        for ref in dm_copies:  # the copies Admins got by DM show the decision too, and lose their buttons
            rt.slack.edit(ref, text, blocks)
    if rt.slack is not None and (in_channel or tell_requester):
        if in_channel:
            text, blocks = approval_message(view)
            rt.slack.edit(f"request:{view.id}", text, blocks, also=None if tell_requester else completes(a))
        if tell_requester:
            text, blocks = outcome_dm(view)
            rt.slack.dm(f"request_outcome:{view.id}", view.requester, text, blocks, also=completes(a))
        return
    rt.db.run(outbox.complete, a.id)


def send_invitation(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        view = describe_invitation(s, a.payload["invitation_id"])
    if rt.slack is not None and view.status == "pending":
        user = view.invitee_slack_id or rt.slack.user_by_email(view.invitee_email)
        if user is None:
            raise PermanentProviderError(f"nobody in this Slack has the e-mail {view.invitee_email}; invite them to Slack first, then to Purser")
        if view.invitee_slack_id is None:
            rt.db.run(invitations.match_invitee, view.id, user)
        text, blocks = invitation_dm(view)
        rt.slack.dm(f"invitation:{view.id}", user, text, blocks, also=completes(a))
        return
    rt.db.run(outbox.complete, a.id)


def action_failed(rt: Runtime, a: Claimed) -> None:
    """Carry out what a failure means, then tell whoever asked (the requester, the inviter) or else the workspace's alerts channel.

    An invitation that could not be delivered is withdrawn. A request whose approval message
    could not be posted goes to its Admins by DM (it is in their App Home too), so it can
    still be decided.
    """
    with rt.db.session() as s:
        failed = s.get(Action, a.payload["action_id"])
        kind, reason = failed.kind, failed.error or "unknown error"
        payload = dict(failed.payload or {})
        who = outbox.requester_of(s, failed)
        if who is None and kind == "send_invitation":
            inv = s.get(Invitation, failed.payload.get("invitation_id"))
            inviter = s.get(Member, inv.inviter_id) if inv and inv.inviter_id else None
            who = inviter.slack_user_id if inviter else None
        ws = s.get(Workspace, failed.workspace_id) if failed.workspace_id else None
        channel = ws.alerts_channel if ws else None
    if kind == "send_invitation" and payload.get("invitation_id"):
        rt.db.run(invitations.undeliverable, payload["invitation_id"], reason)
    if kind == "request_opened" and rt.slack is not None:
        _ask_admins_after_failure(rt, payload["request_id"], reason)
    if rt.slack is not None and (who or channel):
        text, blocks = failure_blocks(kind, reason)
        if who:
            rt.slack.dm(f"failure:{a.id}", who, text, blocks, also=completes(a))
        else:
            rt.slack.post(f"failure:{a.id}", channel, text, blocks, also=completes(a))
        return
    rt.db.run(outbox.complete, a.id)


def _ask_admins_after_failure(rt: Runtime, request_id: int, reason: str) -> None:
    with rt.db.session() as s:
        view = describe_request(s, request_id)
    if view.state != "pending":
        return
    note, note_blocks = undelivered_request(reason)
    text, blocks = approval_message(view)
    for admin in view.deciders:
        rt.slack.dm(f"request:{view.id}:to:{admin}", admin, note, [*note_blocks, *blocks])
