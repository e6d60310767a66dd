"""/ai-key: ask for, list, rotate and revoke API keys."""

from __future__ import annotations

from bot import texts
from bot.blocks.common import code, lit, money
from bot.commands.common import amount, lease_minutes, workspace_id, workspace_of
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.context import Asker
from bot.replies import Reply
from bot.views.key_form import key_form
from store import keys
from store.leases import describe_length
from store.db import Database
from store.views import describe_key

COMMAND = "/ai-key"
OPTIONS = {**WORKSPACE_OPTIONS, "--project": "project", "-p": "project", "--limit": "limit", "-l": "limit", "--expires": "lease", "--for": "lease", "--reason": "reason"}
FLAGS = {"--all": "all"}


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS, flags=FLAGS)
    sub = (parsed.word(0) or "").lower()
    if sub in ("", "help"):
        return Reply(texts.HELP[COMMAND])
    if sub == "new":
        return new(db, asker, parsed)
    if sub == "list":
        return list_keys(db, asker, parsed)
    if sub in ("rotate", "revoke", "disable", "enable"):
        return change(db, asker, parsed, sub)
    raise UsageError(f"{code(sub[:20])} is not something /ai-key does.")


def opens_form(parsed) -> bool:
    """`/ai-key new` with nothing but a workspace: the form asks for the rest."""
    return len(parsed.words) == 1 and not parsed.options.keys() - {"workspace"}


def new(db: Database, asker: Asker, parsed) -> Reply:
    ws = workspace_of(db, asker, parsed)
    if opens_form(parsed):
        return Reply(modal=key_form(db, asker, ws.id, ws.slug))
    name = parsed.word(1)
    if name is None:
        raise UsageError("Name the key: `/ai-key new search-bot`.")
    if len(parsed.words) > 2:
        raise UsageError(f"One name only; “{parsed.words[2][:20]}” is extra. Put options after it, like --limit $50.")
    limit = amount(parsed.options["limit"], "limit") if "limit" in parsed.options else None
    req = db.run(
        keys.request_key,
        asker.actor,
        ws.id,
        name=name,
        project=parsed.options.get("project"),
        limit_micros=limit,
        lease_minutes=lease_minutes(parsed.options.get("lease")),
        reason=parsed.options.get("reason"),
    )
    return Reply(request_reply(req, ws.slug))


def request_reply(req, workspace: str) -> str:
    p = req.payload
    what = f"key {code(p['name'])} in {code(workspace)} (limit {money(p.get('limit_micros'))})"
    if p.get("lease_minutes"):
        what += f", for {describe_length(p['lease_minutes'])} once made"
    if req.state.value == "approved":
        return f"✅ Approved: your {what} is being made. A DM with a Reveal button follows in a moment."
    return f"📨 Asked the admins of {code(workspace)} for your {what} — request #{req.id}. You will get a DM when it is decided."


def list_keys(db: Database, asker: Asker, parsed) -> Reply:
    ws_id = workspace_id(db, asker, parsed)

    def views(s):
        return [describe_key(s, k.id) for k in keys.list_keys(s, asker.actor, ws_id, everyone="all" in parsed.flags)]

    found = db.run(views)
    if not found:
        return Reply("You have no keys here yet. Ask for one with `/ai-key new <name>`.")
    lines = [
        f"• #{k.id} {code(k.name)} {code(k.prefix + '…')} · {('project ' + code(k.project)) if k.project else 'no project'} · "
        f"{money(k.spent_micros)} of {money(k.limit_micros)} this {k.limit_period.rstrip('ly') if k.limit_period != 'daily' else 'day'} · "
        + (f"⏸️ paused: {k.held}" if k.held else k.status)
        + (f" · owner <@{k.owner}>" if "all" in parsed.flags and k.owner else "")
        for k in found
    ]
    return Reply("*Keys*\n" + "\n".join(lines[:50]))


def change(db: Database, asker: Asker, parsed, verb: str) -> Reply:
    ref = parsed.word(1)
    if ref is None:
        raise UsageError(f"Which key? `/ai-key {verb} <name or number>` — `/ai-key list` shows them.")
    ws_id = workspace_id(db, asker, parsed)
    key = db.run(keys.find_key, asker.actor, ws_id, ref)
    if verb == "rotate":
        db.run(keys.rotate_key, asker.actor, key.id)
        return Reply(f"🔄 Rotating {code(key.name)}: the new key arrives by DM; the old one keeps working for the grace period, then stops.")
    if verb == "revoke":
        db.run(keys.revoke_key, asker.actor, key.id, reason=parsed.options.get("reason"))
        return Reply(f"🛑 Revoked {code(key.name)}: it is refused from now on.")
    if verb == "disable":
        db.run(keys.disable_key, asker.actor, key.id, reason=parsed.options.get("reason"))
        return Reply(f"⏸️ Disabled {code(key.name)}. `/ai-key enable {lit(key.name, 60)}` turns it back on.")
    db.run(keys.enable_key, asker.actor, key.id)
    return Reply(f"▶️ Enabled {code(key.name)}.")
