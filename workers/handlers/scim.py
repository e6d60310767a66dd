"""SCIM provisioning's outside work: finding a provisioned person in Slack by e-mail, and telling the Admins of a refused push."""

from __future__ import annotations

from bot.blocks import scim as blocks
from store import outbox, scim_people
from store.errors import DomainError
from store.outbox import Claimed
from workers.handlers import completes
from workers.runtime import Runtime


def scim_lookup(rt: Runtime, a: Claimed) -> None:
    """Slack knows the address: they join, and are welcomed. Not yet: look again later, while their invitation waits."""
    user_id, attempt = a.payload["scim_user_id"], int(a.payload.get("attempt", 0))
    with rt.db.session() as s:
        email = scim_people.waiting_lookup(s, user_id)
    if email is None or rt.slack is None:  # joined, withdrawn or expired meanwhile; or no Slack to ask
        rt.db.run(outbox.complete, a.id)
        return
    slack_user = rt.slack.user_by_email(email)
    if slack_user is None:
        rt.db.run(scim_people.look_again, a.id, a.workspace_id, user_id, attempt)
        return
    try:
        joined = rt.db.run(scim_people.found_in_slack, user_id, slack_user)
    except DomainError as exc:  # a role cap filled up meanwhile: refused (and audited); the Admins hear it
        rt.db.run(scim_people.tell_admins, a.workspace_id, exc.message, "system:scim")
        rt.db.run(outbox.complete, a.id)
        return
    if joined is None:
        rt.db.run(outbox.complete, a.id)
        return
    slack_user, role, workspace = joined
    text, message = blocks.welcome(workspace, role)
    rt.slack.dm(f"scim_welcome:{a.id}", slack_user, text, message, also=completes(a))


def scim_refused(rt: Runtime, a: Claimed) -> None:
    """Each Admin of the workspace gets it in a DM (a refusal is about who holds which role: theirs to sort out)."""
    with rt.db.session() as s:
        workspace, admins = scim_people.admins_to_tell(s, a.workspace_id)
    if rt.slack is None or not admins:
        rt.db.run(outbox.complete, a.id)
        return
    text, message = blocks.refused(workspace, a.payload["detail"], a.payload.get("asked_by", "SCIM"))
    for i, admin in enumerate(admins):
        rt.slack.dm(f"scim_refused:{a.id}:{admin}", admin, text, message, also=completes(a) if i == len(admins) - 1 else None)
