"""An access review as each Admin gets it by DM: pages of members and keys with Keep / Revoke / Transfer.

Slack takes 50 blocks in a message; an item takes two (what it is, its buttons), so a review
is sent as pages of ``PAGE`` items, each its own message under its own ref. An item keeps
its page for good (pages are cut by position), so a decision edits one page in place.
"""

from __future__ import annotations

import json
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, InputBlock, MarkdownTextObject, PlainTextObject, SectionBlock, UserSelectElement
from slack_sdk.models.views import View

from bot.blocks.common import code, context, mention, money, section
from store.review_views import ItemView, ReviewView, TransferView

KEEP, REVOKE, TRANSFER = "review_keep", "review_revoke", "review_transfer"
TRANSFER_FORM = "review_transfer_form"
#: items per message: two blocks each, and room for the page's heading and footnote within Slack's 50
PAGE = 20


def pages(view: ReviewView) -> int:
    return max(1, -(-len(view.items) // PAGE))


def page_of(view: ReviewView, item_id: int) -> int:
    return next(n for n, i in enumerate(view.items) if i.id == item_id) // PAGE


def _period(view: ReviewView) -> str:
    if view.quarter:
        return f"the quarter {view.quarter}"
    return f"this quarter so far ({view.since:%-d %b} to {view.until:%-d %b %Y})"


def _used(at: datetime | None) -> str:
    return "never used" if at is None else f"last used {at:%-d %b %Y}, {at:%H}:00 UTC"


def _what(i: ItemView) -> str:
    if i.kind == "member":
        return f"👤 {mention(i.member)} — {i.role}"
    return f"🔑 Key {code(i.key_name)} ({code(i.key_prefix)}) of {mention(i.member)}"


def _outcome(i: ItemView) -> str:
    if i.settled:
        return f"➖ No decision needed: {i.settled}."
    words = {"keep": "✅ Kept", "revoke": "⛔ Revoked" if i.kind == "key" else "⛔ Removed", "transfer": f"➡️ Handed to {mention(i.transfer_to)}"}
    return f"{words[i.decision]} by {mention(i.decided_by)} at {i.decided_at:%Y-%m-%d %H:%M} UTC."


def _buttons(i: ItemView) -> ActionsBlock:
    what = f"key {i.key_name}" if i.kind == "key" else "this member (their keys are revoked with them)"
    revoke = ButtonElement(
        text="Revoke" if i.kind == "key" else "Remove", action_id=REVOKE, value=str(i.id), style="danger",
        confirm=ConfirmObject(title="Sure?", text=f"Revoke {what}? It stops working at once.", confirm="Yes", deny="No"),
    )  # fmt: skip
    elements = [ButtonElement(text="Keep", action_id=KEEP, value=str(i.id), style="primary"), revoke]
    if i.kind == "key":
        elements.append(ButtonElement(text="Transfer", action_id=TRANSFER, value=str(i.id)))
    return ActionsBlock(block_id=f"review_item:{i.id}", elements=elements)


def review_page(view: ReviewView, page: int) -> tuple[str, list[Block]]:
    count = pages(view)
    shown = view.items[page * PAGE : (page + 1) * PAGE]
    state = "complete" if view.closed_at else f"{view.undecided} of {len(view.items)} item(s) to decide"
    part = f" (page {page + 1} of {count})" if count > 1 else ""
    text = f"Access review #{view.id} of {view.workspace}{part}: {state}"
    blocks: list[Block] = [
        section(f"🔎 *Access review #{view.id} of {code(view.workspace)}*{part}: who keeps access, with spend over {_period(view)}. {state.capitalize()}."),
    ]
    for i in shown:
        line = f"{_what(i)} · {_used(i.last_used_at)} · {money(i.spend_micros)} spent"
        if i.open:
            blocks += [section(line), _buttons(i)]
        else:
            blocks.append(section(f"{line}\n{_outcome(i)}"))
    blocks.append(context("Removing a member revokes their keys: transfer a key the team still needs first. Items nobody decides are reminded daily."))
    return text, blocks


def reminder(view: ReviewView) -> tuple[str, list[Block]]:
    text = f"Access review #{view.id} of {view.workspace}: {view.undecided} item(s) still undecided"
    return text, [section(f"⏰ *Access review #{view.id} of {code(view.workspace)}* still waits for {view.undecided} of {len(view.items)} decision(s). They are in the review Purser sent you on {view.opened_at:%-d %b %Y}; Keep, Revoke or Transfer each.")]


def completed(view: ReviewView) -> tuple[str, list[Block]]:
    n = {d: sum(1 for i in view.items if i.decision == d) for d in ("keep", "revoke", "transfer")}
    elsewhere = sum(1 for i in view.items if i.settled)
    counts = f"{n['keep']} kept, {n['revoke']} revoked, {n['transfer']} transferred" + (f", {elsewhere} settled outside the review" if elsewhere else "")
    text = f"Access review #{view.id} of {view.workspace} is complete: {counts}"
    return text, [section(f"✅ *Access review #{view.id} of {code(view.workspace)} is complete*: {counts}. Every item, with who decided and when, is in the CSV below; the audit log has the same as `review.complete`.")]


def csv_name(view: ReviewView) -> str:
    return f"access-review-{view.workspace}-{view.id}.csv"


def transferred(t: TransferView, *, by: str | None, old: str | None, new: str | None, to_new: bool) -> tuple[str, list[Block]]:
    if to_new:
        line = f"🔑 {mention(by)} handed you key {code(t.key_name)} ({code(t.key_prefix)}) in {code(t.workspace)}, which was {mention(old)}'s. It keeps its secret, limit and project; its spend is yours to answer for from now on."
    else:
        line = f"🔑 {mention(by)} handed your key {code(t.key_name)} ({code(t.key_prefix)}) in {code(t.workspace)} to {mention(new)}. It keeps working for them; it is no longer in your `/ai-key list`."
    return line.replace("`", "").replace("*", ""), [section(line)]


def transfer_form(item_id: int, key_name: str | None, workspace: str) -> View:
    return View(
        type="modal",
        callback_id=TRANSFER_FORM,
        title=PlainTextObject(text="Transfer a key"),
        submit=PlainTextObject(text="Transfer"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"item_id": item_id}),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=f"Who gets key {code(key_name)} in {code(workspace)}? An Admin or a Developer of the workspace; the key keeps working for them.")),
            InputBlock(block_id="to", label="New owner", element=UserSelectElement(action_id="value", placeholder="Pick a member")),
        ],
    )


def picked(view: object) -> str | None:
    """The user the Transfer form's select was given, or None (a forged submission may carry anything)."""
    node = view
    for key in ("state", "values", "to", "value", "selected_user"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, str) else None
