"""An access review's outcome as CSV: one row per item, what was decided, by whom and when.

Names come from people (key names, e-mails) and go into a spreadsheet, so every text cell
goes through the statement CSV's guard against formulas (``inert``).
"""

from __future__ import annotations

import csv
import io

from store.review_views import ReviewView
from store.statement_csv import inert, usd

COLUMNS = ("item", "kind", "member", "role", "key", "key_prefix", "last_used", "spend_usd", "spend_micros", "outcome", "transferred_to", "decided_by", "decided_at")


def review_csv(view: ReviewView) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in view.items:
        outcome = i.decision or i.settled or "undecided"
        texts = (i.member, i.role, i.key_name or "", i.key_prefix or "")
        writer.writerow((
            i.id, i.kind, *(inert(t) for t in texts), i.last_used_at.isoformat(timespec="seconds") if i.last_used_at else "",
            usd(i.spend_micros), i.spend_micros, inert(outcome), inert(i.transfer_to or ""), inert(i.decided_by or ""),
            i.decided_at.isoformat(timespec="seconds") if i.decided_at else "",
        ))  # fmt: skip
    return out.getvalue()
