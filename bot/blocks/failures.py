"""Telling people that something Purser tried for them could not be done."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks.common import context, lit, section

WHAT = {
    "provision_key": "make your key",
    "rotate_key": "rotate your key",
    "revoke_key": "revoke the key at the provider",
    "disable_key": "disable the key at the provider",
    "enable_key": "enable the key at the provider",
    "send_invitation": "deliver the invitation",
    "pause_project": "pause the project's keys at the provider",
    "resume_project": "resume the project's keys at the provider",
    "pause_workspace": "pause the workspace's keys at the provider",
    "resume_workspace": "resume the workspace's keys at the provider",
    "retire_key": "retire the rotated key at the provider",
    "sync_key_state": "update the key at the provider",
}


def action_failed(kind: str, reason: str) -> tuple[str, list[Block]]:
    what = WHAT.get(kind, kind.replace("_", " "))
    line = f"❌ Purser could not {what}: {lit(reason, 1500)}"
    return line, [section(line), context("Nothing was half-done: fix the cause and ask again, or ask an Admin to look.")]
