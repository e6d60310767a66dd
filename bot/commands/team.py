"""/ai-team: who is in the workspace; roles; removing and leaving; an access review on demand."""

from __future__ import annotations

from bot import texts
from bot.blocks.common import code, lit
from bot.commands.common import workspace_id
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.context import Asker
from bot.replies import Reply
from store import members, reviews
from store.db import Database
from store.permissions import membership
from store.review_views import review_view
from store.types import Role

COMMAND = "/ai-team"
OPTIONS = {**WORKSPACE_OPTIONS, "--reason": "reason"}


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS)
    sub = (parsed.word(0) or "list").lower()
    if sub == "help":
        return Reply(texts.HELP[COMMAND])
    ws_id = workspace_id(db, asker, parsed)
    if sub == "list":
        people = db.run(members.list_members, asker.actor, ws_id)
        lines = [f"• {_who(m)} — {m.role.title}" for m in people]
        return Reply(f"*{len(people)} member(s)*\n" + "\n".join(lines[:100]))
    if sub == "role":
        user, role = parsed.word(1), parsed.word(2)
        if user is None or role is None:
            raise UsageError("Say who and which role: `/ai-team role @someone developer`.")
        target = db.run(members.find_member, ws_id, user, asker.actor, "member.role")
        me = db.run(membership, asker.actor, ws_id)
        if me is not None and me.role is Role.DEVELOPER:
            req = db.run(members.request_role_change, asker.actor, ws_id, target.id, role, parsed.options.get("reason"))
            return Reply(f"📨 Asked the admins to make {_who(target)} {Role.parse(role).title} — request #{req.id}.")
        member = db.run(members.change_role, asker.actor, ws_id, target.id, role)
        return Reply(f"✅ {_who(member)} is now {member.role.title}.")
    if sub == "remove":
        user = parsed.word(1)
        if user is None:
            raise UsageError("Say who: `/ai-team remove @someone`.")
        target = db.run(members.find_member, ws_id, user, asker.actor, "member.remove")
        db.run(members.remove_member, asker.actor, ws_id, target.id)
        return Reply(f"✅ Removed {_who(target)}; their keys are revoked.")
    if sub == "review":
        review = db.run(reviews.open_review, asker.actor, ws_id)
        view = db.run(review_view, review.id)
        keys = sum(1 for i in view.items if i.kind == "key")
        return Reply(f"🔎 Access review #{view.id} of {code(view.workspace)} is open: {len(view.items) - keys} member(s) and {keys} key(s). Each Admin gets it by DM, to Keep, Revoke or Transfer each.")
    if sub == "leave":
        me = db.run(members.find_member, ws_id, asker.user_id, asker.actor, "member.leave")
        db.run(members.remove_member, asker.actor, ws_id, me.id)
        return Reply("✅ You left the workspace; your keys are revoked.")
    raise UsageError(f"`{lit(sub, 20)}` is not something /ai-team does.")


def _who(member) -> str:
    return f"<@{member.slack_user_id}>" if member.slack_user_id else code(member.email or "?")
