"""The "new key" form that `/ai-key new` with no arguments opens, and the one-time reveal."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import ContextBlock, InputBlock, MarkdownTextObject, PlainTextInputElement, PlainTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.context import Asker
from bot.views import submitted
from store import budgets
from store.db import Database

KEY_FORM = "key_new"
REVEAL_VIEW = "key_revealed"


def key_form(db: Database, asker: Asker, workspace_id: int, workspace: str) -> View:
    projects = [p.slug for p in db.run(budgets.list_projects, asker.actor, workspace_id)]
    hint = f"One of: {', '.join(projects[:20])}" if projects else "This workspace has no projects yet; leave it empty."
    return View(
        type="modal",
        callback_id=KEY_FORM,
        title=PlainTextObject(text="New API key"),
        submit=PlainTextObject(text="Ask"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"workspace_id": workspace_id, "channel_id": asker.channel_id}),
        blocks=[
            ContextBlock(elements=[MarkdownTextObject(text=f"Workspace `{workspace}`")]),
            InputBlock(block_id="name", label="Name", element=PlainTextInputElement(action_id="value", placeholder="search-bot", max_length=60)),
            InputBlock(block_id="project", label="Project", optional=True, hint=hint[:2000], element=PlainTextInputElement(action_id="value", max_length=40)),
            InputBlock(block_id="limit", label="Spending limit", optional=True, hint="Like $50. Empty: your role's preset.", element=PlainTextInputElement(action_id="value", max_length=20)),
            InputBlock(block_id="expires", label="Expires after", optional=True, hint="Like 8h, 3d or 2w. Empty: your role's preset.", element=PlainTextInputElement(action_id="value", max_length=10)),
            InputBlock(block_id="reason", label="Why", optional=True, element=PlainTextInputElement(action_id="value", multiline=True, max_length=500)),
        ],
    )


def form_values(view: dict) -> dict[str, str | None]:
    return {block: (submitted(view, block) or "").strip() or None for block in ("name", "project", "limit", "expires", "reason")}


def reveal_view(name: str, secret: str) -> View:
    """The only place a key's secret is ever shown."""
    return View(
        type="modal",
        callback_id=REVEAL_VIEW,
        title=PlainTextObject(text="Your API key"),
        close=PlainTextObject(text="Done"),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=f"Here is the secret of `{name}`. Copy it now: Purser will not show it again.")),
            SectionBlock(text=PlainTextObject(text=secret, emoji=False)),
            ContextBlock(elements=[MarkdownTextObject(text="Keep it in a secret manager, never in a channel or a repository.")]),
        ],
    )
