"""/ai-usage: a period's spend split by project, member, key or model, as far as the asker's role may see; the chart comes by DM."""

from __future__ import annotations

import re

from bot import texts
from bot.blocks.common import code, lit, mention, money
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.commands.common import one_of, workspace_id
from bot.context import Asker
from bot.replies import Reply
from store import outbox, usage_reports
from store.db import Database
from store.spend_series import WINDOWS, By
from store.types import ActionKind

COMMAND = "/ai-usage"
OPTIONS = {**WORKSPACE_OPTIONS, "--project": "project", "-p": "project", "--days": "days", "--period": "period", "--by": "by"}
FLAGS = {"--mine": "mine", "--no-chart": "no_chart"}
SHOWN = 25


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS, flags=FLAGS)
    if parsed.word(0, "").lower() == "help":
        return Reply(texts.HELP[COMMAND])
    if parsed.words:
        raise UsageError(f"`{lit(parsed.words[0], 20)}` is not an option of /ai-usage.")
    days = None
    if "days" in parsed.options:
        raw_days = parsed.options["days"]
        if not (raw_days.isascii() and raw_days.isdigit()):
            raise UsageError("--days takes a whole number, like 30.")
        if "period" in parsed.options:
            raise UsageError("Give --period or --days, not both.")
        days = int(raw_days)
    period = one_of(parsed.options.get("period", "month"), WINDOWS, "period (--period)")
    by = one_of(parsed.options.get("by", "project"), tuple(b.value for b in By), "breakdown (--by)")
    ws_id = workspace_id(db, asker, parsed)
    report = db.run(usage_reports.usage_report, asker.actor, ws_id, project=parsed.options.get("project"), mine="mine" in parsed.flags, days=days, period=period, by=by)
    lines = [headline(report)]
    if not report.rows:
        lines.append("Nothing spent.")
    for r in report.rows[:SHOWN]:
        lines.append(f"• {_label(report.by, r)} — {money(r.amount_micros)} ({r.events:,} calls{_tokens(r)})")
    if len(report.rows) > SHOWN:
        lines.append(f"…and {len(report.rows) - SHOWN} more, {money(sum(r.amount_micros for r in report.rows[SHOWN:]))} together.")
    if "no_chart" not in parsed.flags and asker.user_id:
        # The chart is drawn by a worker and sent to the asker's DM: a file cannot be ephemeral,
        # and drawing it here would hold the command past Slack's three seconds.
        db.run(lambda s: outbox.emit(s, ActionKind.USAGE_CHART, workspace_id=report.workspace_id, payload=chart_request(report, asker, days)))
        lines.append("_The chart is on its way to your DM with Purser._")
    return Reply("\n".join(lines))


def headline(report: usage_reports.UsageReport) -> str:
    whose = "Your" if report.scope == "yours" else f"`{report.workspace}`"
    what = report.window.name if report.window.name.startswith("last ") else report.window.describe()
    project = f" in project {code(report.project)}" if report.project else ""
    return f"*{whose} spend{project}, {what}, by {report.by.value}:* {money(report.total_micros)}"


def chart_request(report: usage_reports.UsageReport, asker: Asker, days: int | None) -> dict:
    return {
        "user": asker.user_id,
        "team": asker.team_id,
        "period": report.window.name if days is None else None,
        "days": days,
        "by": report.by.value,
        "mine": report.scope == "yours",
        "project": report.project,
    }


#: a Slack user id, as opposed to the e-mail a member invited by address is known by until they join
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _who(member: str | None) -> str:
    return mention(member) if member and SLACK_USER.match(member) else lit(member or "someone", 80)


def _label(by: By, r) -> str:
    if by is By.MEMBER:
        return _who(r.member)
    if by is By.KEY:
        return f"{code(r.label)} · {_who(r.member)}"
    return code(r.label)


def _tokens(r) -> str:
    tokens = r.prompt_tokens + r.completion_tokens
    return f", {tokens:,} tokens" if tokens else ""
