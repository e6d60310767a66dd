"""The owner's "your key is ready" message and the one-time reveal."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.blocks.common import code, context, fields, mention, money, section, when
from store.views import KeyView

REVEAL = "key_reveal"


def key_ready_dm(key: KeyView, *, rotated: bool = False, revealed: bool = False, approved_by: str | None = None) -> tuple[str, list[Block]]:
    """``revealed``: the message once its one reveal is done, without the button. ``approved_by``: the Admin who
    approved the request (a Slack user id); this message is how its owner hears of the approval."""
    verb = "rotated key" if rotated else "key"
    text = f"Your {verb} {key.name} in {key.workspace} is ready."
    blocks: list[Block] = [
        section(f"🔑 Your {verb} {code(key.name)} in {code(key.workspace)} is ready."),
        fields(
            [
                ("Prefix", code(key.prefix)),
                ("Project", code(key.project) if key.project else "none"),
                ("Limit", f"{money(key.limit_micros)} {key.limit_period}"),
                ("Expires", when(key.expires_at)),
            ]
        ),
    ]
    if revealed:
        blocks.append(context("✅ The secret was revealed. Purser keeps no copy: if it is lost, rotate the key with `/ai-key rotate`."))
    else:
        blocks.append(ActionsBlock(block_id=f"key:{key.id}", elements=[ButtonElement(text="Reveal", action_id=REVEAL, value=str(key.id), style="primary")]))
        blocks.append(context("The secret can be revealed once, within 24 hours; Purser keeps no copy after that."))
    if approved_by:
        blocks.insert(1, context(f"✅ Your request was approved by {mention(approved_by)}."))
    if rotated:
        blocks.append(context("Your previous key keeps working until its grace period ends; switch over before then."))
    return text, blocks
