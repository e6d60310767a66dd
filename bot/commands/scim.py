"""/ai-workspace scim: the identity provider's SCIM token, and which of its groups gives which role (docs/scim.md)."""

from __future__ import annotations

from bot.blocks.common import code, lit
from bot.parser import Parsed, UsageError
from bot.context import Asker
from bot.replies import Reply
from store import scim, scim_roles
from store.db import Database

USAGE = (
    "`/ai-workspace scim` shows the tokens and mappings; `scim token [name]` makes a token (shown once); `scim revoke <name>`; "
    "`scim map <group> <role>`, `scim unmap <group>`, `scim default <role|none>`."
)


def handle(db: Database, asker: Asker, ws_id: int, parsed: Parsed) -> Reply:
    verb = (parsed.word(1) or "show").lower()
    rest = parsed.words[2:]
    if verb in ("show", "maps", "tokens"):
        return _show(db, asker, ws_id)
    if verb == "token":
        made = db.run(scim.create_token, asker.actor, ws_id, rest[0] if rest else None)
        retired = f"\nRetired the oldest token ({', '.join(code(n) for n in made.retired)}): at most two live at once." if made.retired else ""
        return Reply(
            f"🔑 SCIM token {code(made.name)} — shown this once, copy it into your identity provider now (Purser keeps only its hash):\n"
            f"`{made.secret}`\n"
            f"SCIM base URL: Purser's public address followed by `/scim/v2` (the host Slack sends Purser's requests to).{retired}"
        )
    if verb == "revoke":
        if not rest:
            raise UsageError("Name the token: `/ai-workspace scim revoke okta`.")
        name = db.run(scim.revoke_token, asker.actor, ws_id, rest[0])
        return Reply(f"✅ Revoked SCIM token {code(name)}: the identity provider using it is refused from now on.")
    if verb == "map":
        if len(rest) < 2:
            raise UsageError("Name the group, then the role: `/ai-workspace scim map Engineering developer`.")
        group, role = " ".join(rest[:-1]), rest[-1]
        row = db.run(scim_roles.map_group, asker.actor, ws_id, group, role)
        return Reply(f"✅ Members of the identity provider's group {lit(row.display_name, 100)} are {row.role.title}s here; people it already pushed were given the role now.")
    if verb == "default":
        if not rest:
            raise UsageError("Say which role everyone provisioned gets, or none: `/ai-workspace scim default viewer`.")
        if rest[0].lower() == "none":
            db.run(scim_roles.unmap_group, asker.actor, ws_id, scim.EVERYONE)
            return Reply("✅ People provisioned without a mapped group get no role here any more.")
        row = db.run(scim_roles.map_group, asker.actor, ws_id, scim.EVERYONE, rest[0])
        return Reply(f"✅ Everyone the identity provider provisions is at least a {row.role.title} here (a mapped group may give more).")
    if verb == "unmap":
        if not rest:
            raise UsageError("Name the group: `/ai-workspace scim unmap Engineering`.")
        shown = db.run(scim_roles.unmap_group, asker.actor, ws_id, " ".join(rest))
        return Reply(f"✅ The group {lit(shown, 100)} gives no role here any more; the members it gave theirs to were settled again.")
    raise UsageError(f"`{lit(verb, 20)}` is not something `scim` does. {USAGE}")


def _show(db: Database, asker: Asker, ws_id: int) -> Reply:
    tokens = db.run(scim.list_tokens, asker.actor, ws_id)
    maps = db.run(scim_roles.list_maps, asker.actor, ws_id)
    lines = ["*SCIM provisioning*"]
    lines += [f"• token {code(name)} ({prefix}…), made {made}" for name, prefix, made in tokens] or ["• no token yet: `/ai-workspace scim token okta` makes one"]
    shown = [f"• {'everyone provisioned' if group == scim.EVERYONE else lit(group, 100)} → {role}{'' if pushed else ' (not pushed yet)'}" for group, role, pushed in maps]
    lines += shown or ["• no group mapped to a role yet: `/ai-workspace scim map <group> <role>`"]
    return Reply("\n".join(lines))
