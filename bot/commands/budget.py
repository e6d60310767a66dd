"""/ai-budget: budgets at a glance, setting or requesting them, temporary raises, and the workspace cap."""

from __future__ import annotations

from bot import texts
from bot.blocks.common import bar, code, lit, money
from bot.blocks.requests import duration
from bot.commands.common import amount, hours, workspace_id
from bot.parser import WORKSPACE_OPTIONS, UsageError, parse
from bot.context import Asker
from bot.replies import Reply
from store import budgets, raises
from store.db import Database

COMMAND = "/ai-budget"
OPTIONS = {**WORKSPACE_OPTIONS, "--period": "period", "--reason": "reason", "--for": "for"}
RAISE_EXAMPLE = '`/ai-budget raise search +$200 --for 3d --reason "launch week"`'


def handle(db: Database, asker: Asker, text: str) -> Reply:
    parsed = parse(text, options=OPTIONS)
    sub = (parsed.word(0) or "show").lower()
    if sub == "help":
        return Reply(texts.HELP[COMMAND])
    ws_id = workspace_id(db, asker, parsed)
    period = parsed.options.get("period")
    if sub == "show":
        return Reply(overview(db, asker, ws_id))
    if sub in ("set", "request"):
        project, value = parsed.word(1), parsed.word(2)
        if project is None or value is None:
            raise UsageError(f"Say which project and how much: `/ai-budget {sub} search $500`.")
        micros = amount(value, "budget")
        if sub == "request":
            req = db.run(budgets.request_budget_change, asker.actor, ws_id, project, micros, period, reason=parsed.options.get("reason"))
            return Reply(f"📨 Asked the admins to set {code(project)}'s budget to {money(micros)} — request #{req.id}.")
        proj, created = db.run(budgets.budget_project, asker.actor, ws_id, project, micros, period)
        if created:
            return Reply(f"✅ Created project {code(proj.slug)} with a budget of {money(micros)} {proj.budget_period.value}.")
        return Reply(f"✅ {code(proj.slug)}'s budget is {money(proj.budget_micros)} {proj.budget_period.value}." + (" It is paused: its spend is already over that." if proj.status.value == "paused" else ""))
    if sub == "raise":
        return _raise(db, asker, ws_id, parsed.word(1), parsed.word(2), parsed.options)
    if sub == "cap":
        value = parsed.word(1)
        if value is None:
            raise UsageError("Say how much: `/ai-budget cap $5,000`.")
        micros = None if value.lower() in ("none", "off") else amount(value, "cap")
        change = db.run(budgets.change_cap, asker.actor, ws_id, micros, period, reason=parsed.options.get("reason"))
        if change.request_id is not None:
            return Reply(f"📨 Asked the admins to set the spending cap to {money(micros)} — request #{change.request_id}.")
        return Reply(f"✅ The spending cap of {code(change.workspace)} is {money(change.cap_micros)} {change.period.value}.")
    if sub == "pause":
        project = parsed.word(1)
        if project is None:
            raise UsageError('Say which project: `/ai-budget pause search --reason "…"`.')
        db.run(budgets.pause_project, asker.actor, ws_id, project, parsed.options.get("reason", ""))
        return Reply(f"⏸️ Paused {code(project)}; its keys are refused until it resumes.")
    if sub == "resume":
        project = parsed.word(1)
        if project is None:
            raise UsageError("Say which project: `/ai-budget resume search`.")
        db.run(budgets.resume_project, asker.actor, ws_id, project)
        return Reply(f"▶️ Resumed {code(project)}.")
    raise UsageError(f"`{lit(sub, 20)}` is not something /ai-budget does.")


def _raise(db: Database, asker: Asker, ws_id: int, project: str | None, value: str | None, options: dict[str, str]) -> Reply:
    if project is None or value is None:
        raise UsageError(f"Say which project, how much more and for how long: {RAISE_EXAMPLE}.")
    micros = amount(value.removeprefix("+"), "raise")  # "+$200" reads as what it adds
    span = hours(options.get("for"), "--for 3d or --for 12h")
    req = db.run(raises.request_budget_raise, asker.actor, ws_id, project, micros, span, reason=options.get("reason"))
    return Reply(f"📨 Asked the admins to raise {code(project)}'s budget by {money(micros)} for {duration(span)} — request #{req.id}. It ends by itself.")


def overview(db: Database, asker: Asker, ws_id: int) -> str:
    lines = db.run(budgets.budget_overview, asker.actor, ws_id)
    out = ["*Budgets* (paused first)"]
    for line in lines:
        name = f"cap of {code(line.name)}" if line.kind == "cap" else code(line.name)
        state = f" ⏸️ paused: {lit(line.paused_reason or '', 100)}" if line.paused else ""
        extra = f" (with {money(line.raised_micros)} of temporary raises)" if line.raised_micros else ""
        out.append(f"• {name} {money(line.spent_micros)} / {money(line.limit_micros)}{extra} {line.period.value} `{bar(line.spent_micros, line.limit_micros)}`{state}")
    return "\n".join(out[:60])
