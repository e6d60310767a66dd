"""Access reviews in Slack: the pages to each Admin, the daily reminder, the outcome with its CSV, and a transfer's notices.

Every message goes under a ref of the review (``review:{id}:p{page}:to:{user}``), so a
decision edits each Admin's copy of its page in place and a retry posts nothing twice.
One Admin Slack will not reach never keeps the review from the others.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.blocks.reviews import completed, csv_name, page_of, pages, reminder, review_page, transferred
from store import outbox
from store.review_csv import review_csv
from store.review_views import review_admins, review_view, transfer_view
from store.outbox import Claimed
from workers.runtime import Runtime
from workers.slack_errors import PERSON_UNREACHABLE, explain

log = logging.getLogger(__name__)


def _each(rt: Runtime, to: list[str], send) -> list[str]:
    reached = []
    for user in to:
        try:
            send(user)
            reached.append(user)
        except SlackApiError as exc:
            if exc.response.get("error") not in PERSON_UNREACHABLE:
                raise
            log.warning("an access review message was not sent to %s: %s", user, explain(exc.response.get("error")))
    return reached


def _read(rt: Runtime, review_id: int):
    with rt.db.session() as s:
        view = review_view(s, review_id)
        return view, review_admins(s, view.workspace_id)


def post_review(rt: Runtime, a: Claimed) -> None:
    """Every page when the review opens; after a decision, only the page of the item decided."""
    view, admins = _read(rt, a.payload["review_id"])
    if rt.slack is not None:
        item = a.payload.get("item_id")
        shown = [page_of(view, item)] if item is not None else range(pages(view))
        for page in shown:
            text, blocks = review_page(view, page)
            _each(rt, admins, lambda user, page=page, text=text, blocks=blocks: rt.slack.dm(f"review:{view.id}:p{page}:to:{user}", user, text, blocks))
    rt.db.run(outbox.complete, a.id)


def remind_review(rt: Runtime, a: Claimed) -> None:
    view, admins = _read(rt, a.payload["review_id"])
    if rt.slack is not None and view.closed_at is None:
        text, blocks = reminder(view)
        _each(rt, admins, lambda user: rt.slack.dm(f"review:{view.id}:remind:{a.payload['day']}:to:{user}", user, text, blocks))
    rt.db.run(outbox.complete, a.id)


def review_complete(rt: Runtime, a: Claimed) -> None:
    """The outcome first, then the CSV one upload a person, so a DM Slack refuses costs no one else the file."""
    view, admins = _read(rt, a.payload["review_id"])
    if rt.slack is not None:
        text, blocks = completed(view)
        reached = _each(rt, admins, lambda user: rt.slack.dm(f"review:{view.id}:complete:to:{user}", user, text, blocks))
        content = review_csv(view).encode()
        for user in reached:
            rt.slack.upload_dm(f"review:{view.id}:csv:{user}", [user], filename=csv_name(view), content=content, alt_text=f"Access review #{view.id} of {view.workspace}: every item as CSV", title=f"Access review #{view.id} of {view.workspace}")
    rt.db.run(outbox.complete, a.id)


def key_transferred(rt: Runtime, a: Claimed) -> None:
    p = a.payload
    with rt.db.session() as s:
        t = transfer_view(s, p["key_id"])
    if rt.slack is not None:
        for user, side in ((p.get("to"), "new"), (p.get("from"), "old")):
            if user:
                text, blocks = transferred(t, by=p.get("by"), old=p.get("from"), new=p.get("to"), to_new=side == "new")
                _each(rt, [user], lambda u, ref=f"key_transferred:{a.id}:{side}", text=text, blocks=blocks: rt.slack.dm(ref, u, text, blocks))
    rt.db.run(outbox.complete, a.id)
