"""/ai-audit: recent events, verification and export (Admins)."""

from __future__ import annotations

import io

from bot import texts
from bot.blocks.common import code, lit
from bot.commands.common import workspace_id
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.context import Asker
from bot.replies import Reply
from store import audit
from store.db import Database

COMMAND = "/ai-audit"
OPTIONS = dict(WORKSPACE_OPTIONS)
EXPORT_LIMIT = 2800  # what fits in one message; the CLI exports everything


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS)
    sub = (parsed.word(0) or "recent").lower()
    if sub == "help":
        return Reply(texts.HELP[COMMAND])
    ws_id = workspace_id(db, asker, parsed)
    if sub == "recent":
        n = parsed.word(1, "20")
        if not (n.isascii() and n.isdigit()):
            raise UsageError("`/ai-audit recent 20` takes a number.")
        events = db.run(audit.recent, asker.actor, ws_id, int(n))
        lines = [f"• #{e.seq} {e.at:%m-%d %H:%M} {lit(e.actor, 40)} {code(e.action)} {lit(e.resource, 60)}{' *denied*' if e.outcome == 'denied' else ''}" for e in events]
        return Reply("*Recent audit events*\n" + ("\n".join(lines) or "None yet."))
    if sub == "verify":
        return Reply(("🔒 " if (v := db.run(audit.verify, asker.actor, ws_id)).ok else "🚨 ") + v.summary)
    if sub == "export":
        fmt = (parsed.word(1) or "jsonl").lower()
        if fmt not in ("csv", "jsonl"):
            raise UsageError("Export as `csv` or `jsonl`.")
        out = io.StringIO()
        db.run(audit.export, asker.actor, ws_id, out, fmt)
        body = out.getvalue()
        shown = body if len(body) <= EXPORT_LIMIT else body[:EXPORT_LIMIT].rsplit("\n", 1)[0] + "\n…"
        note = "" if len(body) <= EXPORT_LIMIT else "\nThe whole log, hashes included: `purser audit export <workspace> --format " + fmt + "`."
        # Reasons and names in the log are whatever people typed: escaped even inside the code block.
        shown = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("```", "ˋˋˋ")
        return Reply(f"```{shown}```{note}")
    raise UsageError(f"`{lit(sub, 20)}` is not something /ai-audit does.")
