"""/ai-workspace policy: who approves which requests (show, set, reset), and the key policy whose defaults follow."""

from __future__ import annotations

from bot.blocks.common import code, escape
from bot.context import Asker
from bot.parser import Parsed, UsageError
from bot.replies import Reply
from store import approvals, workspaces
from store.approvals import PolicyView
from store.db import Database

HELP = (
    "*/ai-workspace policy* — who approves which requests\n"
    "• `/ai-workspace policy [show]` the rules, in the order they are tried: the first that matches a request decides it\n"
    "• `/ai-workspace policy set <rule>; <rule>; …` replace the workspace's own rules (Admins)\n"
    "• `/ai-workspace policy reset` back to the defaults (Admins)\n"
    "• `/ai-workspace policy approval|auto` which defaults follow the workspace's own rules: "
    "`approval` (an Admin decides every key but an Admin's own) or `auto` (keys within the role's preset too are approved at once)\n"
    "A rule is `<what it matches>: <who approves>`. It matches a kind of request (`key`, `invite`, `budget`, `cap`, `role`, "
    "`credit`, `model` or `any`), `over $N`, `under $N`, `project <name>`, `by <role>` (who asks) and `within preset` (keys); "
    "it asks for Admins and Billing Managers — at least one Admin — like `2 admins + billing`, or approves a key `automatic`.\n"
    "For example: `/ai-workspace policy set key over $500: 2 admins + billing; cap: admin + billing; key under $50: automatic; key: 2 admins`\n"
    "Each approver counts once, nobody approves their own request, and one denial ends it."
)
_SHOWN = "`/ai-workspace policy show` lists the rules; `/ai-workspace policy help` explains them."


def handle(db: Database, asker: Asker, ws_id: int, parsed: Parsed) -> Reply:
    verb = (parsed.word(1) or "show").lower()
    if verb == "help":
        return Reply(HELP)
    if verb == "show":
        return Reply(shown(db.run(approvals.show_policy, asker.actor, ws_id)))
    if verb == "set":
        text = " ".join(parsed.words[2:])
        if not text.strip():
            raise UsageError("Write the rules after `set`, like `/ai-workspace policy set key over $500: 2 admins + billing; key: 1 admin`. " + _SHOWN)
        return Reply("✅ " + shown(db.run(approvals.set_policy, asker.actor, ws_id, text)))
    if verb == "reset":
        return Reply("✅ " + shown(db.run(approvals.reset_policy, asker.actor, ws_id)))
    if verb in ("approval", "auto"):
        ws = db.run(workspaces.set_key_policy, asker.actor, ws_id, verb)
        return Reply(f"✅ Key policy of {code(ws.slug)}: {ws.key_policy.value}.\n" + shown(db.run(approvals.show_policy, asker.actor, ws_id)))
    raise UsageError(f"Say which policy command you mean: show, set, reset, approval or auto ({code(verb[:20])} is none of them). " + _SHOWN)


def shown(view: PolicyView) -> str:
    lines = [f"*Approval policy of {code(view.workspace)}* — the first rule that matches a request decides it:"]
    number = 0
    for rule in view.own:
        number += 1
        lines.append(f"{number}. {_rule(rule)}")
    lines.append(f"then the defaults of key policy {code(view.key_policy)}:" if view.own else f"the defaults of key policy {code(view.key_policy)}:")
    for rule in view.defaults:
        number += 1
        lines.append(f"{number}. {_rule(rule)}")
    return "\n".join(lines)


def _rule(text: str) -> str:
    # Written by the store from the parsed rule (a project's name is the only word typed), so a code span holds it whole.
    return "`" + escape(text).replace("`", "ˋ") + "`"
