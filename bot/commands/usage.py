"""/ai-usage: what has been spent, as far as the asker's role may see."""

from __future__ import annotations

from bot import texts
from bot.blocks.common import lit, money
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.commands.common import workspace_id
from bot.context import Asker
from bot.replies import Reply
from store import usage_reports
from store.db import Database

COMMAND = "/ai-usage"
OPTIONS = {**WORKSPACE_OPTIONS, "--project": "project", "-p": "project", "--days": "days"}
FLAGS = {"--mine": "mine"}


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS, flags=FLAGS)
    if parsed.word(0, "").lower() == "help":
        return Reply(texts.HELP[COMMAND])
    if parsed.words:
        raise UsageError(f"`{lit(parsed.words[0], 20)}` is not an option of /ai-usage.")
    raw_days = parsed.options.get("days", "30")
    if not (raw_days.isascii() and raw_days.isdigit()):
        raise UsageError("--days takes a whole number, like 30.")
    ws_id = workspace_id(db, asker, parsed)
    report = db.run(usage_reports.usage_report, asker.actor, ws_id, project=parsed.options.get("project"), mine="mine" in parsed.flags, days=int(raw_days))
    head = f"*{'Your' if report.scope == 'yours' else 'Workspace'} spend, last {report.days} days:* {money(report.total_micros)}"
    if not report.rows:
        return Reply(head + "\nNothing spent.")
    return Reply(head + "\n" + "\n".join(f"• {lit(r.label, 200)} — {money(r.amount_micros)} ({r.events} calls)" for r in report.rows[:40]))
