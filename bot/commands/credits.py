"""/ai-credits: the shared credit pool's balance, and top-ups."""

from __future__ import annotations

from bot import texts
from bot.blocks.common import context, lit, money
from bot.blocks.statement import statement_message
from bot.commands.common import amount, workspace_id
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.context import Asker
from bot.replies import Reply
from store import credits, statements
from store.db import Database

COMMAND = "/ai-credits"
OPTIONS = {**WORKSPACE_OPTIONS, "--reason": "reason", "--note": "note", "--month": "month", "-m": "month"}


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS)
    sub = (parsed.word(0) or "balance").lower()
    if sub == "help":
        return Reply(texts.HELP[COMMAND])
    ws_id = workspace_id(db, asker, parsed)
    if sub == "balance":
        balance = db.run(credits.credit_balance, asker.actor, ws_id)
        if not balance.funded:
            return Reply("The credit pool has not been funded yet, so spend is only counted. `/ai-credits add $N` funds it.")
        lines = [f"*Credit pool:* {money(balance.balance_micros)}"]
        lines += [f"• {e.created_at:%Y-%m-%d %H:%M} {e.kind} {money(e.amount_micros)} → {money(e.balance_after_micros)}" for e in balance.entries]
        return Reply("\n".join(lines))
    if sub == "add":
        micros = amount(parsed.word(1), "amount")
        if parsed.options.get("reason"):
            req = db.run(credits.request_topup, asker.actor, ws_id, micros, parsed.options["reason"])
            return Reply(f"📨 Asked the admins for a top-up of {money(micros)} — request #{req.id}.")
        entry = db.run(credits.add_credit, asker.actor, ws_id, micros, parsed.options.get("note"))
        return Reply(f"✅ Added {money(micros)}; the pool holds {money(entry.balance_after_micros)}.")
    if sub == "statement":
        month = statements.parse_month(parsed.options["month"]) if parsed.options.get("month") else None
        st = db.run(statements.send_statement, asker.actor, ws_id, month)
        text, blocks = statement_message(st)
        blocks.append(context("📬 Sent to your DMs too, with the chart and the CSV of every line item."))
        return Reply(text, blocks)
    raise UsageError(f"`{lit(sub, 20)}` is not something /ai-credits does.")
