"""What the alerts channel hears: thresholds, pauses, resumes, a new period, temporary raises."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks.common import code, context, lit, mention, money, section, when
from store.raises import RaiseNotice

KIND_NAMES = {"project": "Project", "cap": "Workspace cap", "credit": "Credit pool"}


def budget_name(kind: str, name: str) -> str:
    if kind == "project":
        return f"project {code(name)}"
    if kind == "cap":
        return f"the spending cap of {code(name)}"
    return f"the credit pool of {code(name)}"


def threshold_alert(kind: str, name: str, threshold: int, spent: int, limit: int, period: str, forecast: str) -> tuple[str, list[Block]]:
    icon = "🛑" if threshold >= 100 else ("⚠️" if threshold >= 80 else "📈")
    share = spent * 100 // limit if limit else 100
    text = f"{KIND_NAMES.get(kind, kind)} {name} reached {threshold}% of its budget"
    blocks: list[Block] = [
        section(f"{icon} {budget_name(kind, name).capitalize() if kind != 'project' else 'Project ' + code(name)} has reached *{threshold}%* of its {period if period != 'none' else ''} budget: {money(spent)} of {money(limit)} ({share}%).".replace("  ", " ")),
        context(forecast),
    ]
    return text, blocks


def paused(kind: str, name: str, reason: str, workspace: str) -> tuple[str, list[Block]]:
    if kind == "project":
        what = f"Project {code(name)} is paused: {lit(reason, 200)}. Its keys are refused until it resumes; other projects carry on."
        todo = (
            f"An Admin can raise the budget with `/ai-budget set {name} $N -w {workspace}`; a Developer can ask with `/ai-budget request {name} $N --reason \"…\"`, "
            f"or for a while with `/ai-budget raise {name} +$N --for 3d --reason \"…\"`."
        )
    elif reason == "credit":
        what = f"Workspace {code(name)} is paused: its credit pool is empty. Every key in it is refused."
        todo = f"A Billing Manager or an Admin can add credit with `/ai-credits add $N -w {workspace}`."
    else:
        what = f"Workspace {code(name)} is paused: its spending cap is spent. Every key in it is refused."
        todo = f"An Admin can raise the cap with `/ai-budget cap $N -w {workspace}`."
    return f"⏸️ {what}", [section(f"⏸️ {what}"), context(todo)]


def resumed(kind: str, name: str, why: str) -> tuple[str, list[Block]]:
    what = f"Project {code(name)}" if kind == "project" else f"Workspace {code(name)}"
    line = f"▶️ {what} is running again: {why}."
    return line, [section(line)]


def rollover(workspace: str, resumed_what: list[str]) -> tuple[str, list[Block]]:
    line = f"🗓️ A new budget period began in {code(workspace)}: spend starts again from $0.00 and alerts are re-armed."
    blocks: list[Block] = [section(line)]
    if resumed_what:
        blocks.append(context("Resumed: " + ", ".join(resumed_what)))
    return line, blocks


def raise_started(n: RaiseNotice) -> tuple[str, list[Block]]:
    line = f"⏫ Project {code(n.project)}'s budget is raised by {money(n.amount_micros)} until {when(n.ends_at)}: its limit is {money(n.limit_micros)} now."
    by = n.granted_by.removeprefix("slack:")
    source = f"Approved by {mention(by)}" + (f" (request #{n.request_id})" if n.request_id else "") + "."
    after = f" Its {n.period} budget of {money(n.budget_micros)} applies again after that, against the spend of the period then."
    return line, [section(line), context(source + after)]


def raise_ended(n: RaiseNotice) -> tuple[str, list[Block]]:
    line = f"⏬ The temporary raise of {money(n.amount_micros)} on project {code(n.project)} ended at {when(n.ends_at)}: its limit is {money(n.limit_micros)} again."
    return line, [section(line), context(f"Ask for more with `/ai-budget raise {n.project} +$N --for 3d --reason \"…\" -w {n.workspace}`.")]


def linked(workspace: str, slug: str, adopted: bool, budgets: str | None) -> tuple[str, list[Block]]:
    """The workspace is on OpenRouter now; and, once, whether OpenRouter can hold its cap too."""
    how = "adopted the existing" if adopted else "created the"
    text = f"{workspace} is linked to OpenRouter workspace {slug}"
    blocks: list[Block] = [section(f"🔗 {code(workspace)} is linked to OpenRouter: Purser {how} OpenRouter workspace {code(slug)}. New keys are made there; keys made before stay where they are.")]
    if budgets == "unavailable":
        blocks.append(context(budgets_unavailable()))
    elif budgets == "mirrored":
        blocks.append(context("The spending cap is kept as the OpenRouter workspace's budget too."))
    return text, blocks


def budgets_unavailable() -> str:
    return (
        "This OpenRouter organisation has no workspace budgets (OpenRouter keeps them for its Enterprise plan), so OpenRouter cannot hold the cap by itself. "
        "Purser's quota leases hold it: no key can spend past what remains of the cap, the project budgets or the credit pool."
    )


def budgets_notice(workspace: str) -> tuple[str, list[Block]]:
    return f"OpenRouter cannot hold the cap of {workspace} by itself", [section(f"ℹ️ {code(workspace)}: " + budgets_unavailable())]
