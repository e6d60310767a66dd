"""The approval message admins decide on, and the requester's notice of the outcome."""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.blocks.common import code, context, fields, header, lit, mention, money, section, when, yes_no
from store.approval_rules import needs_words, progress_text
from store.leases import describe_length
from store.types import Role
from store.views import RequestView

TITLES = {
    "key": "API key request",
    "invite": "Invitation request",
    "budget_change": "Budget change request",
    "budget_raise": "Temporary budget raise request",
    "cap_change": "Spending cap change request",
    "role_change": "Role change request",
    "credit_topup": "Credit top-up request",
    "model_access": "Model access request",
    "key_extend": "Key extension request",
}
APPROVE, DENY = "request_approve", "request_deny"


def what(req: RequestView) -> str:
    p = req.payload
    if req.kind == "key":
        where = f" for project {code(p['project'])}" if p.get("project") else ""
        return f"a key {code(p['name'])}{where}"
    if req.kind == "invite":
        people = ", ".join(mention(w) if w.startswith(("U", "W")) else lit(w, 80) for w in p["invitees"][:20])
        return f"to invite {people} as {p['role']}"
    if req.kind == "budget_change":
        return f"project {code(p['project'])}'s budget to {money(p['budget_micros'])}" + (f" ({p['period']})" if p.get("period") else "")
    if req.kind == "budget_raise":
        return f"project {code(p['project'])}'s budget raised by {money(p['amount_micros'])} for {duration(p['hours'])}"
    if req.kind == "cap_change":
        return f"the workspace cap to {money(p['cap_micros'])}" + (f" ({p['period']})" if p.get("period") else "")
    if req.kind == "role_change":
        return f"{mention(p.get('member'))} to become {p['role']}"
    if req.kind == "credit_topup":
        return f"a credit top-up of {money(p['amount_micros'])}"
    if req.kind == "model_access":
        where = f"project {code(p['project'])}" if p.get("project") else "the workspace"
        return f"model {code(p['model'])} in {where}"
    if req.kind == "key_extend":
        return f"key {code(p['name'])} to work {describe_length(p['by_minutes'])} longer"
    return req.kind


def duration(hours: int) -> str:
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''}"


def _details(req: RequestView) -> list[tuple[str, str]]:
    p = req.payload
    rows = [("Workspace", f"{code(req.workspace)} ({req.environment})"), ("Asked by", f"{mention(req.requester)} ({req.requester_role})")]
    if req.kind == "key":
        rows.append(("Project", code(p["project"]) if p.get("project") else "none"))
        rows.append(("Limit", f"{money(p.get('limit_micros'))} {p.get('limit_period', '')}".strip()))
        rows.append(("Role's preset", money(p.get("preset_micros"))))
        if req.project_budget_left is not None:
            rows.append(("Project budget left", money(req.project_budget_left)))
        if p.get("lease_minutes") or p.get("expires_days"):
            rows.append(("Lives for", describe_length(p.get("lease_minutes") or p["expires_days"] * 1440)))
    if req.kind == "key_extend":
        ends = datetime.fromisoformat(p["from"])
        rows.append(("Ends now", when(ends)))
        rows.append(("Would end", when(datetime.fromisoformat(p["to"]) if p.get("to") else ends + timedelta(minutes=p["by_minutes"]))))
    if req.kind in ("budget_change", "cap_change", "budget_raise"):
        rows.append(("Now", money(p.get("current_micros")) + (f" {p['period']}" if req.kind == "budget_raise" else "")))
    if req.kind == "budget_raise":
        if req.project_budget_left is not None:
            rows.append(("Left this period", money(req.project_budget_left)))
        rows.append(("Approving", f"adds {money(p['amount_micros'])} at once, for {duration(p['hours'])}; it ends by itself"))
    if req.kind == "model_access":
        rows.append(("Approving", "adds it to " + (f"project {code(p['project'])}'s model policy" if p.get("project") else "the workspace's model policy")))
    if req.reason:
        rows.append(("Reason", lit(req.reason, 500)))
    return rows


def decision_buttons(request_id: int, *, block_id: str) -> ActionsBlock:
    return yes_no(block_id, request_id, ("Approve", APPROVE), ("Deny", DENY), no_style="danger")


def approval_message(req: RequestView) -> tuple[str, list[Block]]:
    """While pending: the buttons. Once decided: the same message, updated in place to the outcome."""
    title = TITLES.get(req.kind, "Request")
    text = f"{title} #{req.id}: {mention(req.requester)} asks for {what(req)}"
    blocks: list[Block] = [header(f"{title} #{req.id}"), section(f"{mention(req.requester)} asks for {what(req)}."), fields(_details(req))]
    if req.state == "pending":
        if sum(req.needs.values()) > 1:
            blocks.append(section(progress(req)))
        blocks.append(decision_buttons(req.id, block_id=f"request:{req.id}"))
        blocks.append(context(f"Pending · expires 7 days after {when(req.created_at)} · {who_decides(req)}"))
    else:
        blocks.append(section(outcome_line(req)))
    return text, blocks


def _needs(req: RequestView) -> dict[Role, int]:
    return {Role(role): n for role, n in req.needs.items()}


def progress(req: RequestView) -> str:
    """`*Approvals:* 1 of 2 Admins · Billing Manager needed`, then who approved so far."""
    line = f"*Approvals:* {progress_text(_needs(req), [Role(role) for _, role in req.approved_by])}"
    if req.approved_by:
        line += "\nApproved by " + ", ".join(f"{mention(who)} ({Role(role).title})" for who, role in req.approved_by)
    return line


def who_decides(req: RequestView) -> str:
    if req.needs == {"admin": 1}:
        return "only an Admin can decide"
    return f"needs {needs_words(_needs(req))}, each a different person and never the requester"


def outcome_line(req: RequestView) -> str:
    icon = {"approved": "✅", "denied": "⛔", "expired": "⌛", "cancelled": "↩️"}.get(req.state, "•")
    if req.auto_approved:
        who = "by the workspace's key policy"
    elif req.state == "approved" and len(req.approved_by) > 1:
        who = "by " + ", ".join(mention(approver) for approver, _ in req.approved_by)
    elif req.decided_by:
        who = f"by {mention(req.decided_by)}"
    else:
        who = ""
    line = f"{icon} *{req.state.capitalize()}* {who} at {when(req.decided_at)}".replace("  ", " ")
    if req.note and not req.auto_approved:
        line += f"\n>{lit(req.note, 500)}"
    return line


def outcome_dm(req: RequestView) -> tuple[str, list[Block]]:
    text = f"Your request #{req.id} ({what(req)}) was {req.state}."
    blocks: list[Block] = [section(f"Your request #{req.id} in {code(req.workspace)} — {what(req)}:"), section(outcome_line(req))]
    if req.state == "approved" and req.kind == "key":
        blocks.append(context("Your key is being made; a message with a Reveal button follows."))
    elif req.state == "approved" and req.kind == "key_extend" and req.payload.get("successor"):
        blocks.append(context("A key like it with the new end comes by DM with its Reveal button; switch to it before the old one stops."))
    elif req.state == "approved" and req.kind == "key_extend" and req.payload.get("to"):
        blocks.append(context(f"Key {code(req.payload['name'])} now stops at {when(datetime.fromisoformat(req.payload['to']))}."))
    elif req.state == "approved" and req.kind == "budget_raise":
        blocks.append(context(f"It applies now, for {duration(req.payload['hours'])}; the alerts channel says when it ends."))
    elif req.state == "approved" and req.kind == "model_access":
        blocks.append(context("Your keys may call it now; `/ai-models` lists what they may call."))
    elif req.state == "denied":
        blocks.append(context("You can ask again with more detail, or talk to an Admin."))
    return text, blocks
