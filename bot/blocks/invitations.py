"""The invitee's DM with Accept and Decline."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks.common import code, context, mention, section, when, yes_no
from store.views import InvitationView

ACCEPT, DECLINE = "invitation_accept", "invitation_decline"
ROLE_TITLES = {"admin": "Admin", "developer": "Developer", "viewer": "Viewer", "billing": "Billing Manager"}


def invitation_dm(inv: InvitationView) -> tuple[str, list[Block]]:
    role = ROLE_TITLES.get(inv.role, inv.role)
    by = f"{mention(inv.inviter)} invites you" if inv.inviter else "You are invited"
    text = f"{by} to {inv.workspace} as {role}."
    blocks: list[Block] = [section(f"✉️ {by} to join {code(inv.workspace)} ({inv.environment}) as *{role}*.")]
    if inv.status == "pending":
        blocks.append(yes_no(f"invitation:{inv.id}", inv.id, ("Accept", ACCEPT), ("Decline", DECLINE)))
        blocks.append(context(f"The invitation is good until {when(inv.expires_at)}."))
    else:
        blocks.append(context(f"This invitation was {inv.status}."))
    return text, blocks
