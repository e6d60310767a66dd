"""Buttons and modal submissions: approve, deny (with a reason), reveal, accept, decline, the key form.

A button's handler does its one store operation and lets a refusal rise: the one action
wrapper in ``bot.app`` tells the clicker why (``refusal``).
"""

from __future__ import annotations

import json
import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import texts
from bot.blocks.common import code, lit, mention
from bot.blocks import directory as directory_blocks
from bot.blocks import leaks as leak_blocks
from bot.blocks import leases as lease_blocks
from bot.blocks import reviews as review_blocks
from bot.blocks import spikes as spike_blocks
from bot.blocks.keys import key_ready_dm
from bot.blocks.requests import what
from bot.context import Asker
from bot.commands.common import lease_minutes
from bot.commands.key import request_reply
from bot.parser import UsageError
from bot.replies import error_text, error_words
from bot.views.deny import deny_form, reason_of
from bot.views.key_form import form_values, reveal_view
from store import decisions, directory, invitations, keys, leaks, leases, requests, reviews, spikes
from store.db import Database
from store.errors import Conflict, DomainError
from store.approval_rules import needs_words
from store.money import parse_money
from store.permissions import Actor
from store.review_views import item_subject
from store.views import describe_key, describe_request

log = logging.getLogger(__name__)


def _int(value) -> int:
    """An id a button or a modal carried back: whoever clicks can send anything in its place."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or not 0 < value < 2**63:
        raise UsageError("That button carries no valid id.")
    return value


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _metadata(body: dict) -> dict:
    try:
        meta = json.loads(_dict(body.get("view")).get("private_metadata") or "{}")
    except (TypeError, ValueError):
        return {}
    return _dict(meta)


def tell(client: WebClient, body: dict, text: str) -> None:
    """An answer only the clicker sees: ephemeral where the button was, else a small modal (App Home)."""
    user = body["user"]["id"]
    channel = _dict(body.get("channel")).get("id") or _dict(body.get("container")).get("channel_id")
    try:
        if isinstance(channel, str) and channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        elif body.get("trigger_id"):
            from slack_sdk.models.blocks import MarkdownTextObject, PlainTextObject, SectionBlock
            from slack_sdk.models.views import View

            view = View(type="modal", title=PlainTextObject(text="Purser"), close=PlainTextObject(text="OK"), blocks=[SectionBlock(text=MarkdownTextObject(text=text[:3000]))])
            client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", user, exc.response.get("error"))


#: a late click's words for what was decided first: a request's outcome, or an access review item's
_DECIDED = {"approved": "approved", "denied": "denied", "keep": "decided (kept)", "revoke": "decided (revoked)", "transfer": "decided (transferred)"}


def refusal(exc: BaseException) -> str:
    """A late click hears who decided first and when, with a mention."""
    if isinstance(exc, Conflict) and exc.decided_at is not None and exc.state in _DECIDED:
        who = mention(exc.decided_by) if exc.decided_by else "Purser's policy"
        return f"Already {_DECIDED[exc.state]} by {who} at {exc.decided_at:%H:%M} UTC ({exc.decided_at:%Y-%m-%d})."
    return error_text(exc)


def approve(db: Database, client: WebClient, body: dict) -> None:
    decision = db.run(decisions.decide_request, Actor.slack(body["user"]["id"]), _int(body["actions"][0].get("value")), approve=True)
    if not decision.final:  # the message updates for everyone; the clicker hears at once that it counted
        tell(client, body, f"Your approval of request #{decision.request.id} is recorded. It still needs {needs_words(decision.still_needed)}.")


def deny(db: Database, client: WebClient, body: dict) -> None:
    """Check the clicker may decide before asking them why; the decision happens on submit."""
    actor = Actor.slack(body["user"]["id"])
    request_id = _int(body["actions"][0].get("value"))
    db.run(lambda s: requests.check_decider(s, actor, request_id, approve=False))
    view = db.run(lambda s: describe_request(s, request_id))
    client.views_open(trigger_id=body["trigger_id"], view=deny_form(request_id, f"Deny request #{request_id}: {mention(view.requester)} asks for {what(view)}."))


def deny_submitted(db: Database, body: dict) -> dict | None:
    """Returns Slack's ``response_action`` for errors shown in the modal, or None to close it."""
    actor = Actor.slack(body["user"]["id"])
    try:
        request_id = _int(_metadata(body).get("request_id"))
        db.run(decisions.decide_request, actor, request_id, approve=False, note=reason_of(_dict(body.get("view"))))
    except (DomainError, UsageError) as exc:
        return {"response_action": "errors", "errors": {"reason": error_words(exc)[:150]}}
    return None


def reveal(db: Database, client: WebClient, body: dict) -> None:
    actor = Actor.slack(body["user"]["id"])
    revealed = db.run(keys.reveal_key, actor, _int(body["actions"][0].get("value")))
    try:
        client.views_open(trigger_id=body["trigger_id"], view=reveal_view(revealed.key.name, revealed.secret))
    except Exception as exc:  # the modal never opened: the secret goes back to wait for its reveal
        why = exc.response.get("error", "unknown") if isinstance(exc, SlackApiError) else type(exc).__name__
        db.run(keys.restore_reveal, actor, revealed.key.id, revealed.secret, f"Slack could not open the window ({why})")
        tell(client, body, texts.REVEAL_NOT_OPENED.format(name=code(revealed.key.name)))
        return
    # Shown once: the message loses its Reveal button rather than offer what is gone.
    text, blocks = key_ready_dm(db.run(describe_key, revealed.key.id), revealed=True)
    _update_message(client, body, text, [b.to_dict() for b in blocks])


def replace(db: Database, client: WebClient, body: dict) -> None:
    """"Issue a replacement" under a leaked key's notice: a request like the key, as the workspace's policy decides."""
    key_id = _int(body["actions"][0].get("value"))
    req = db.run(leaks.request_replacement, Actor.slack(body["user"]["id"]), key_id)
    text, blocks = leak_blocks.replacement_asked(req.payload["name"])
    _update_message(client, body, text, [b.to_dict() for b in blocks])


def extend(db: Database, client: WebClient, body: dict) -> None:
    """"Extend" under a lease's warning: an extension request, decided as the workspace's key policy says."""
    req = db.run(leases.request_extension, Actor.slack(body["user"]["id"]), _int(body["actions"][0].get("value")))
    text, blocks = lease_blocks.extension_asked(req.id, req.state.value, req.payload)
    _update_message(client, body, text, [b.to_dict() for b in blocks])


def restore(db: Database, client: WebClient, body: dict) -> None:
    """"Restore" under a suspension notice: an Admin brings the member back, under the usual rules."""
    member_id = _int(body["actions"][0].get("value"))
    clicker = body["user"]["id"]

    def restore_and_describe(s):
        member = directory.restore_member(s, Actor.slack(clicker), directory.workspace_of(s, member_id), member_id)
        return directory.notice_of(s, member.id)

    text, blocks = directory_blocks.suspended(*db.run(restore_and_describe), restored_by=clicker)
    _update_message(client, body, text, [b.to_dict() for b in blocks])


def mute_spikes(db: Database, client: WebClient, body: dict) -> None:
    """"Mute for 24 h" / "Mute for 7 days" under a spike alert: the store decides who may (Admins)."""
    clicked = body["actions"][0]
    hours = spike_blocks.MUTES.get(clicked.get("action_id"))
    if hours is None:
        raise UsageError("That button mutes for no known period.")
    muted = db.run(spikes.mute_key, Actor.slack(body["user"]["id"]), _int(clicked.get("value")), hours)
    # The alert stays as it was, its buttons replaced by who muted it and until when.
    kept = [b for b in _dict(body.get("message")).get("blocks") or [] if isinstance(b, dict) and not str(b.get("block_id", "")).startswith(spike_blocks.MUTE_BLOCK)]
    line = spike_blocks.muted_line(muted.key_name, muted.until, body["user"]["id"])
    text = _dict(body.get("message")).get("text") or line
    _update_message(client, body, text, [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}])


def review_keep(db: Database, client: WebClient, body: dict) -> None:
    """Keep / Revoke under an access review item: the store decides (Admins); the worker edits every Admin's copy."""
    db.run(reviews.decide_item, Actor.slack(body["user"]["id"]), _int(body["actions"][0].get("value")), "keep")


def review_revoke(db: Database, client: WebClient, body: dict) -> None:
    db.run(reviews.decide_item, Actor.slack(body["user"]["id"]), _int(body["actions"][0].get("value")), "revoke")


def review_transfer(db: Database, client: WebClient, body: dict) -> None:
    """Check the clicker may decide before asking who gets the key; the transfer happens on submit."""
    item_id = _int(body["actions"][0].get("value"))
    db.run(reviews.check_decider, Actor.slack(body["user"]["id"]), item_id)
    key_name, workspace = db.run(item_subject, item_id)
    client.views_open(trigger_id=body["trigger_id"], view=review_blocks.transfer_form(item_id, key_name, workspace))


def review_transfer_submitted(db: Database, body: dict) -> dict | None:
    try:
        item_id = _int(_metadata(body).get("item_id"))
        db.run(reviews.transfer_to_user, Actor.slack(body["user"]["id"]), item_id, review_blocks.picked(_dict(body.get("view"))) or "")
    except (DomainError, UsageError) as exc:
        return {"response_action": "errors", "errors": {"to": error_words(exc)[:150]}}
    return None


def accept(db: Database, client: WebClient, body: dict) -> None:
    user = body["user"]["id"]
    invitation_id = _int(body["actions"][0].get("value"))
    email = _email(client, user)

    def accept_and_describe(s):
        member = invitations.accept_invitation(s, invitation_id, slack_user_id=user, email=email)
        return member.workspace.slug, member.role.title

    workspace, role = db.run(accept_and_describe)
    _replace_buttons(client, body, f"✅ Welcome to {code(workspace)} as {role}. `/ai-key new <name>` gets you a key.")


def decline(db: Database, client: WebClient, body: dict) -> None:
    user = body["user"]["id"]
    db.run(invitations.decline_invitation, _int(body["actions"][0].get("value")), slack_user_id=user, email=_email(client, user))
    _replace_buttons(client, body, "You declined the invitation.")


def _email(client: WebClient, user: str) -> str | None:
    try:
        return client.users_info(user=user)["user"]["profile"].get("email")
    except (SlackApiError, KeyError, TypeError):
        return None


def _replace_buttons(client: WebClient, body: dict, line: str) -> None:
    _update_message(client, body, line, [{"type": "section", "text": {"type": "mrkdwn", "text": line}}])


def _update_message(client: WebClient, body: dict, text: str, blocks: list[dict]) -> None:
    """The message whose button was clicked, changed in place; a failure only costs the stale button."""
    channel = _dict(body.get("channel")).get("id") or _dict(body.get("container")).get("channel_id")
    ts = _dict(body.get("message")).get("ts") or _dict(body.get("container")).get("message_ts")
    if not channel or not ts:
        return
    try:
        client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
    except SlackApiError as exc:
        log.warning("could not update the message whose button was clicked: %s", exc.response.get("error"))


def key_form_submitted(db: Database, client: WebClient, body: dict) -> dict | None:
    user = body["user"]["id"]
    meta = _metadata(body)
    values = form_values(_dict(body.get("view")))
    try:
        limit = parse_money(values["limit"]) if values["limit"] else None
    except DomainError as exc:
        return {"response_action": "errors", "errors": {"limit": exc.message[:150]}}
    try:
        lease = lease_minutes(values["expires"])
    except UsageError as exc:
        return {"response_action": "errors", "errors": {"expires": str(exc)[:150]}}
    try:
        req = db.run(keys.request_key, Actor.slack(user), _int(meta.get("workspace_id")), name=values["name"] or "", project=values["project"], limit_micros=limit, lease_minutes=lease, reason=values["reason"])
        workspace = db.run(lambda s: describe_request(s, req.id).workspace)
    except (DomainError, UsageError) as exc:
        field = "project" if "project" in error_words(exc).lower() else "name"
        return {"response_action": "errors", "errors": {field: error_words(exc)[:150]}}
    text = request_reply(req, workspace)
    channel = meta.get("channel_id")
    try:
        if isinstance(channel, str) and channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:
        log.warning("could not confirm the key request: %s", exc.response.get("error"))
    return None


def asker_of(body: dict) -> Asker:
    team = body.get("team_id") or _dict(body.get("team")).get("id") or _dict(body.get("user")).get("team_id") or ""
    user = body.get("user_id") or _dict(body.get("user")).get("id") or ""
    return Asker(team, user, body.get("channel_id"))


__all__ = ["approve", "deny", "deny_submitted", "reveal", "accept", "decline", "key_form_submitted", "lit"]
