"""What the Admins hear when a member's Slack account is deactivated, and the Restore button."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.blocks.common import code, context, mention, section

RESTORE = "member_restore"


def suspended(member_id: int, user: str | None, role: str, workspace: str, reason: str, keys: int, restored_by: str | None = None) -> tuple[str, list[Block]]:
    text = f"{user or 'A member'} was suspended in {workspace}: {reason}."
    blocks: list[Block] = [
        section(f"🚪 {mention(user)} ({role}) was suspended in {code(workspace)}: {reason}. Their {keys} key(s) stopped working, what they had asked for was cancelled and the invitations they sent were withdrawn."),
    ]
    if restored_by:
        blocks.append(context(f"✅ Restored by {mention(restored_by)}: their keys work again."))
    else:
        blocks.append(context("Nothing brings them back by itself. If the account is active again and they should keep their place, an Admin can restore them (the role's limit still holds)."))
        blocks.append(ActionsBlock(block_id=f"suspended:{member_id}", elements=[ButtonElement(text="Restore", action_id=RESTORE, value=str(member_id))]))
    return text, blocks
