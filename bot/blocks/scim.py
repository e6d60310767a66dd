"""What SCIM provisioning tells people: the Admins, when the identity provider asked for what the rules refuse; a person it added."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks.common import code, context, inert, lit, section


def refused(workspace: str, detail: str, asked_by: str) -> tuple[str, list[Block]]:
    text = f"The identity provider's provisioning was refused in {workspace}: {detail}"
    return text, [
        section(f"⛔ Your identity provider ({lit(asked_by, 80)}) asked for a change in {code(workspace)} that Purser refused: {inert(detail)}"),
        context("Nothing of that push was applied, and the identity provider was told why; it will try again at its next cycle. Free a place (change someone's role) or change the group's members or its mapping (`/ai-workspace scim maps`)."),
    ]


def welcome(workspace: str, role: str) -> tuple[str, list[Block]]:
    text = f"You were added to {workspace} as {role} by your company's identity provider."
    return text, [
        section(f"👋 Your company's identity provider added you to {code(workspace)} as {role}. Ask for an API key with `/ai-key new`; see what you can do with `/ai-key help`."),
    ]
