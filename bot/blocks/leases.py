"""A leased key's owner told: a day or an hour left (with the Extend button), its end, and an extension asked for."""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.blocks.common import code, context, section, when
from store.leases import LeaseNotice, describe_length

EXTEND = "key_extend"
LEFT = {"day": "a day", "hour": "an hour"}


def lease_notice_dm(n: LeaseNotice) -> tuple[str, list[Block]]:
    if n.kind == "expired":
        text = f"Your key {n.name} in {n.workspace} stopped at {when(n.ends_at)}: its lease ended."
        return text, [
            section(f"⌛ Your key {code(n.name)} in {code(n.workspace)} stopped at {when(n.ends_at)}: its lease ended, and calls with it are refused."),
            context("An ended lease is not extended. If you still need a key, ask for a new one: `/ai-key new <name> --for 8h`."),
        ]
    left = LEFT[n.kind]
    text = f"Your key {n.name} in {n.workspace} stops in {left}, at {when(n.ends_at)}."
    extend = ButtonElement(text=f"Extend by {describe_length(n.by_minutes)}", action_id=EXTEND, value=str(n.key_id), style="primary")
    return text, [
        section(f"⏳ Your key {code(n.name)} in {code(n.workspace)} stops in {left}, at {when(n.ends_at)}."),
        ActionsBlock(block_id=f"lease:{n.key_id}", elements=[extend]),
        context(f"Extend moves its end on by {describe_length(n.by_minutes)}, under the workspace's key policy: an Admin may have to approve it first."),
    ]


def extension_asked(request_id: int, state: str, payload: dict) -> tuple[str, list[Block]]:
    """What the warning becomes once Extend was clicked: approved at once, or asked of the Admins."""
    name, by = payload["name"], describe_length(payload["by_minutes"])
    if state == "approved" and payload.get("successor"):
        line = f"✅ Extended: a key like {code(name)} that stops {by} later comes by DM in a moment; this one still stops at its own end."
    elif state == "approved":
        line = f"✅ Extended: {code(name)} now stops at {when(datetime.fromisoformat(payload['to']))}."
    else:
        asked = when(datetime.fromisoformat(payload["from"]) + timedelta(minutes=payload["by_minutes"]))
        line = f"📨 Asked the Admins to extend {code(name)} by {by}, to {asked} — request #{request_id}. You will get a DM when it is decided."
    return line, [section(line)]
