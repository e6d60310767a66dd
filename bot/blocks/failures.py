"""Telling people that something Purser tried for them could not be done."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks.common import context, inert, section

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
    "notify_key_ready": "send you your new key",
    "request_opened": "post the request where Admins decide it",
    "request_decided": "update the request's approval message",
    "request_progress": "show the approvals so far on the request's message",
    "post_alert": "post the budget alert",
    "announce_rollover": "announce the new budget period",
    "apply_model_policy": "apply the model policy at the provider",
    "post_statement": "send the monthly statement",
}


#: what became of the thing asked for, where it is not "nothing was done"
AFTERWARDS = {
    "request_opened": "The request went to the workspace's Admins by DM instead; it is still waiting for their decision.",
    "send_invitation": "The invitation was withdrawn; invite them again once this is fixed.",
}


def action_failed(kind: str, reason: str) -> tuple[str, list[Block]]:
    what = WHAT.get(kind, "finish what was asked")
    line = f"❌ Purser could not {what}: {inert(reason[:1500])}"
    after = AFTERWARDS.get(kind, "Nothing was half-done: fix the cause and ask again, or ask an Admin to look.")
    return line, [section(line), context(after)]


def undelivered_request(reason: str) -> tuple[str, list[Block]]:
    """Above the approval message an Admin gets in a DM when the approvals channel refused it."""
    line = f"⚠️ This request could not be posted in the approvals channel: {inert(reason[:1000])} It is waiting for a decision here instead (and in Purser's App Home)."
    return line, [section(line)]
