"""Messages to people: approval messages and outcomes, invitations, and failure notices."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.blocks.failures import action_failed as failure_blocks
from bot.blocks.failures import undelivered_request
from bot.blocks.invitations import invitation_dm
from bot.blocks.common import section
from bot.blocks.requests import approval_message, outcome_dm
from store import invitations, outbox
from store.models import Action, Invitation, Member, Workspace
from store.outbox import Claimed
from store.views import describe_invitation, describe_request
from workers import slack_errors
from workers.handlers import completes
from workers.providers.base import PermanentProviderError
from workers.runtime import Runtime

log = logging.getLogger(__name__)


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
        view = describe_request(s, a.payload["request_id"], deciders=False)
    # An approved key's owner hears from the key's own DM (provision_key), which names the approver.
    tell_requester = bool(view.requester and view.requester != view.decided_by) and not (view.kind == "key" and view.state == "approved")
    if rt.slack is None:
        rt.db.run(outbox.complete, a.id)
        return
    text, blocks = approval_message(view)
    # A copy whose ts is not stored yet counts too: its post may be under way, or its poster
    # may have died after Slack took it, and the decision was perhaps made from it. The row's
    # lock waits for the one, the channel's history finds the other, and a post Slack refused
    # gets nothing. Copies Admins got by DM show the decision too, and lose their buttons.
    rt.slack.edit_with_copies(f"request:{view.id}", f"request:{view.id}:to:", text, blocks, also=None if tell_requester else completes(a))
    if tell_requester:
        text, blocks = outcome_dm(view)
        rt.slack.dm(f"request_outcome:{view.id}", view.requester, text, blocks, also=completes(a))


def request_progress(rt: Runtime, a: Claimed) -> None:
    """An approval that leaves others needed: the approval message (and its DM copies) shows who approved and who is still needed.

    Drawn from the request as it is once the message's rows are held: a later approval's edit,
    or the decision's, may have run first, and this one must not put an older state back.
    """
    if rt.slack is None:
        rt.db.run(outbox.complete, a.id)
        return

    def render():
        with rt.db.session() as s:
            return approval_message(describe_request(s, a.payload["request_id"], deciders=False))

    ref = f"request:{a.payload['request_id']}"
    try:
        rt.slack.edit_with_copies(ref, f"{ref}:to:", "", [], render=render, also=completes(a))
    except SlackApiError as exc:
        # The message or its channel gone for good: the request still waits, in App Home and for the next click.
        if exc.response.get("error") not in slack_errors.PERMANENT:
            raise
        log.warning("%s: its approval message cannot show the approvals so far (%s)", ref, exc.response.get("error"))
        rt.db.run(outbox.complete, a.id)


def show_decision(rt: Runtime, view) -> None:
    """The approval message (and its DM copies) shows the decision, for an action that goes on to carry it out.

    Slack refusing the edit for good (the message or channel gone) is logged, never a reason
    not to carry the decision out.
    """
    text, blocks = approval_message(view)
    try:
        rt.slack.edit_with_copies(f"request:{view.id}", f"request:{view.id}:to:", text, blocks)
    except SlackApiError as exc:
        if exc.response.get("error") not in slack_errors.PERMANENT:
            raise
        log.warning("request #%s: its approval message cannot show the decision (%s)", view.id, exc.response.get("error"))


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
