"""The modal that asks an admin why they deny a request."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import InputBlock, MarkdownTextObject, PlainTextInputElement, PlainTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.views import submitted

DENY_FORM = "deny_reason"


def deny_form(request_id: int, summary: str) -> View:
    return View(
        type="modal",
        callback_id=DENY_FORM,
        title=PlainTextObject(text="Deny request"),
        submit=PlainTextObject(text="Deny"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"request_id": request_id}),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=summary[:3000])),
            InputBlock(block_id="reason", label="Why? The person who asked will read this.", element=PlainTextInputElement(action_id="value", multiline=True, min_length=3, max_length=500)),
        ],
    )


def reason_of(view: dict) -> str:
    return (submitted(view, "reason") or "").strip()
