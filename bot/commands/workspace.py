"""/ai-workspace: list, create, bind and link workspaces; their approval policy, channels, allowlist, templates, model policy and SCIM provisioning."""

from __future__ import annotations

from bot import texts
from bot.blocks.common import code, inert, lit, money
from bot.commands.common import amount, days, one_of, workspace_id
from bot.commands.models import workspace_models
from bot.commands import approval_policy
from bot.commands import scim as scim_command
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.context import Asker
from bot.replies import Reply
from store import links, overview, workspace_deletion, workspaces
from store.db import Database

COMMAND = "/ai-workspace"
OPTIONS = {**WORKSPACE_OPTIONS, "--env": "env", "--period": "period", "--lifetime": "lifetime", "--name": "name", "--confirm": "confirm", "--project": "project"}


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS)
    sub = (parsed.word(0) or "list").lower()
    if sub == "help":
        return Reply(texts.HELP[COMMAND])
    if sub == "list":
        return list_mine(db, asker)
    if sub == "create":
        slug = parsed.word(1)
        if slug is None:
            raise UsageError("Name it: `/ai-workspace create staging --env staging`.")
        ws = db.run(workspaces.create_workspace, asker.actor, slug=slug, name=parsed.options.get("name"), environment=parsed.options.get("env", "development"), team_id=asker.team_id)
        return Reply(f"✅ Created {code(ws.slug)} ({ws.environment.value}, key policy {ws.key_policy.value}); you are its Admin.")
    if sub == "use":
        slug = parsed.word(1)
        if slug is None:
            raise UsageError("Which workspace? `/ai-workspace use prod`.")
        parsed.options["workspace"] = slug
        ws = db.run(workspaces.bind_channel, asker.actor, workspace_id(db, asker, parsed), asker.channel_id or "")
        return Reply(f"✅ Commands in this channel now act on {code(ws.slug)} unless you say `-w`.")
    if sub == "delete":
        return delete(db, asker, parsed)
    ws_id = workspace_id(db, asker, parsed)
    if sub == "link":
        ws = db.run(links.link_workspace, asker.actor, ws_id, parsed.word(1))
        return Reply(
            f"🔗 Linking {code(ws.slug)} to OpenRouter workspace {code(ws.provider_slug)}: Purser adopts it if it exists, or creates it. "
            "New keys are made there, each limited to its quota lease; the alerts channel hears when it is done."
        )
    if sub == "models":
        return workspace_models(db, asker, ws_id, parsed)
    if sub == "scim":
        return scim_command.handle(db, asker, ws_id, parsed)
    if sub == "policy":
        return approval_policy.handle(db, asker, ws_id, parsed)
    if sub == "channels":
        chosen = {}
        for word in parsed.words[1:]:
            name, _, value = word.partition("=")
            if name not in ("approvals", "alerts", "audit") or not value:
                raise UsageError("Write channels as approvals=#channel alerts=#channel audit=#channel.")
            chosen[name] = value
        if not chosen:
            raise UsageError("Write channels as approvals=#channel alerts=#channel audit=#channel.")
        ws = db.run(workspaces.set_channels, asker.actor, ws_id, approvals=chosen.get("approvals"), alerts=chosen.get("alerts"), audit_channel=chosen.get("audit"))
        return Reply(f"✅ {code(ws.slug)}: approvals {_ch(ws.approvals_channel)}, alerts {_ch(ws.alerts_channel)}, audit {_ch(ws.audit_channel)}.")
    if sub == "allowlist":
        verb = (parsed.word(1) or "show").lower()
        if verb == "show":
            ws = db.run(workspaces.show_allowlist, asker.actor, ws_id)
            return Reply(f"IP allowlist of {code(ws.slug)}: " + (", ".join(code(c) for c in ws.ip_allowlist) or "empty (every address allowed)"))
        verb = one_of(verb, ("add", "remove"), "allowlist change")
        cidr = parsed.word(2)
        if cidr is None:
            raise UsageError("Give an address or range: `/ai-workspace allowlist add 203.0.113.0/24`.")
        op = workspaces.add_allowlist if verb == "add" else workspaces.remove_allowlist
        ws = db.run(op, asker.actor, ws_id, cidr)
        return Reply(f"✅ IP allowlist of {code(ws.slug)}: " + (", ".join(code(c) for c in ws.ip_allowlist) or "empty (every address allowed)"))
    if sub == "templates":
        role = parsed.word(1)
        if role is not None:
            limit = parsed.word(2)
            micros = None if limit is None or limit.lower() == "none" else amount(limit, "limit")
            db.run(workspaces.set_role_template, asker.actor, ws_id, role, key_limit_micros=micros, limit_period=parsed.options.get("period", "monthly"), key_lifetime_days=days(parsed.options.get("lifetime")))
        found = db.run(workspaces.list_templates, asker.actor, ws_id)
        lines = [f"• {t.role.title}: keys up to {money(t.key_limit_micros)} {t.limit_period.value}, living {t.key_lifetime_days or 'unlimited'} days" for t in found]
        return Reply("*Role presets*\n" + "\n".join(lines))
    raise UsageError(f"`{lit(sub, 20)}` is not something /ai-workspace does.")


def delete(db: Database, asker: Asker, parsed) -> Reply:
    """Two steps: the first says what deleting does; the second, with the name typed again, does it."""
    slug = parsed.word(1)
    if slug is None:
        raise UsageError("Name the workspace to delete: `/ai-workspace delete staging`.")
    parsed.options["workspace"] = slug
    ws_id = workspace_id(db, asker, parsed)
    confirm = parsed.options.get("confirm")
    if confirm is None:
        preview = db.run(workspace_deletion.preview_deletion, asker.actor, ws_id)
        return Reply(f"⚠️ {inert(preview.describe())}\nTo go ahead, type the name again: `/ai-workspace delete {preview.slug} --confirm {preview.slug}`")
    done = db.run(workspace_deletion.delete_workspace, asker.actor, ws_id, confirm=confirm)
    return Reply(
        f"🗑️ Deleted {code(done.workspace.slug)}: {done.revoked_keys} key(s) revoked, {done.cancelled_requests} request(s) and "
        f"{done.cancelled_invitations} invitation(s) withdrawn. Its audit log and history are kept."
    )


def list_mine(db: Database, asker: Asker) -> Reply:
    seats = db.run(overview.workspaces_of, asker.team_id, asker.user_id)
    if not seats:
        return Reply(texts.NO_WORKSPACE)
    return Reply("*Your workspaces*\n" + "\n".join(f"• {code(w.slug)} ({w.environment}) — {w.role}{' · ' + w.status if w.status != 'active' else ''}" for w in seats))


def _ch(channel: str | None) -> str:
    return f"<#{channel}>" if channel else "not set"
