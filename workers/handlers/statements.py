"""The monthly statement to its Admins and Billing Managers (or to the one who asked), by DM.

The text goes first, then the chart, then the CSV, each on its own: a chart that cannot be
drawn or uploaded never holds back the statement itself. Everything is sent under refs
of the statement (``statement:{workspace}:{YYYY-MM}``, or the ask's own for one asked
for in Slack), so a retry edits the text in place and uploads no file twice; an upload
Slack refused is retried with the action, after the text is out.
"""

from __future__ import annotations

import logging
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.blocks.statement import file_name, statement_chart, statement_message
from bot.charts import describe_spend, render_spend
from store import outbox
from store.statement_csv import statement_csv
from store.statements import build_statement, month_name, parse_month, recipients
from store.outbox import Claimed
from workers.runtime import Runtime
from workers.slack_errors import PERSON_UNREACHABLE, explain

log = logging.getLogger(__name__)


def post_statement(rt: Runtime, a: Claimed) -> None:
    month = parse_month(a.payload["month"])
    as_of = datetime.fromisoformat(a.payload["as_of"]) if a.payload.get("as_of") else None
    with rt.db.session() as s:
        # A closed month is rebuilt from its stored close; a preview as it stood when asked.
        st = build_statement(s, a.workspace_id, month, as_of)
        to = a.payload.get("to") or recipients(s, a.workspace_id)
    if rt.slack is None or not to:
        rt.db.run(outbox.complete, a.id)
        return
    ref = a.payload.get("ref") or f"statement:{a.workspace_id}:{month:%Y-%m}"
    png = alt = None
    try:
        chart = statement_chart(st)
        png, alt = render_spend(chart), describe_spend(chart)
    except Exception:
        log.exception("the chart of %s's statement for %s could not be drawn; sending the statement without it", st.workspace, month_name(month))
    text, blocks = statement_message(st)
    reached = []
    for user in to:
        try:
            rt.slack.dm(f"{ref}:to:{user}", user, text, blocks)
            reached.append(user)
        except SlackApiError as exc:  # one deactivated Admin must not keep the statement from the others
            if exc.response.get("error") not in PERSON_UNREACHABLE:
                raise
            log.warning("%s's statement for %s not sent to %s: %s", st.workspace, month_name(month), user, explain(exc.response.get("error")))
    title = f"Statement for {st.workspace}, {month_name(month)}"
    failed: Exception | None = None
    uploads = [("chart", png, "png", alt or "")] if png is not None else []
    uploads.append(("csv", statement_csv(st).encode(), "csv", f"{title}: every line item as CSV"))
    for part, content, ext, alt_text in uploads:
        # One upload a person, so a DM Slack refuses for one of them costs no one else the file.
        for user in reached:
            try:
                rt.slack.upload_dm(f"{ref}:{part}:{user}", [user], filename=file_name(st, ext), content=content, alt_text=alt_text, title=title)
            except Exception as exc:  # the next one still goes; the action is retried for this one (the text and what went are not sent again)
                log.warning("the %s of %s's statement for %s was not uploaded for %s: %s", part, st.workspace, month_name(month), user, exc)
                failed = failed or exc
    if failed is not None:
        raise failed
    rt.db.run(outbox.complete, a.id)
