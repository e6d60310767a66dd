"""App Home: your workspaces and keys, the requests waiting for you, and budgets at a glance."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement
from slack_sdk.models.views import View

from bot.blocks.common import bar, code, context, divider, header, lit, mention, money, section
from bot.blocks.requests import APPROVE, DENY, TITLES, what
from bot.context import Asker
from store import budgets
from store.db import Database
from store.models import ApiKey, Member, Request, Workspace
from store.types import KeyStatus, MemberStatus, RequestState, Role, WorkspaceStatus
from store.views import describe_key, describe_request

MAX_BLOCKS = 100


def home_view(db: Database, asker: Asker) -> View:
    blocks = db.run(lambda s: _blocks(s, asker))
    return View(type="home", blocks=blocks[:MAX_BLOCKS])


def _blocks(s, asker: Asker) -> list[Block]:
    memberships = list(
        s.query(Member, Workspace)
        .join(Workspace, Workspace.id == Member.workspace_id)
        .filter(Member.slack_user_id == asker.user_id, Member.status == MemberStatus.ACTIVE, Workspace.team_id == asker.team_id, Workspace.status != WorkspaceStatus.DELETED)
        .order_by(Workspace.slug)
    )
    blocks: list[Block] = [header("Purser")]
    if not memberships:
        return blocks + [section("You are not in any Purser workspace yet. Ask an admin to `/ai-invite` you.")]
    blocks.append(section("*Your workspaces*\n" + "\n".join(f"• {code(ws.slug)} ({ws.environment.value}) — {m.role.title}" for m, ws in memberships)))
    for member, ws in memberships:
        blocks += [divider(), header(f"{ws.slug} · {member.role.title}")]
        blocks += _keys(s, member)
        if member.role is Role.ADMIN:
            blocks += _pending(s, ws)
        blocks += _budgets(s, asker, ws)
        if len(blocks) > MAX_BLOCKS - 10:
            blocks.append(context("More workspaces than fit here: use `/ai-workspace list`."))
            break
    return blocks


def _keys(s, member: Member) -> list[Block]:
    if member.role not in (Role.ADMIN, Role.DEVELOPER):
        return []
    live = s.query(ApiKey.id).filter(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED).order_by(ApiKey.id).limit(15)
    views = [describe_key(s, key_id) for (key_id,) in live]
    if not views:
        return [section("*Your keys:* none yet — `/ai-key new <name>`")]
    lines = [f"• {code(k.name)} {code(k.prefix + '…')} · {('project ' + code(k.project)) if k.project else 'no project'} · {money(k.spent_micros)} of {money(k.limit_micros)} · {k.status}" for k in views]
    return [section("*Your keys*\n" + "\n".join(lines))]


def _pending(s, ws: Workspace) -> list[Block]:
    waiting = [r.id for r in s.query(Request).filter(Request.workspace_id == ws.id, Request.state == RequestState.PENDING).order_by(Request.id).limit(10)]
    if not waiting:
        return [context("No requests waiting.")]
    out: list[Block] = [section(f"*Waiting for a decision* ({len(waiting)})")]
    for request_id in waiting:
        req = describe_request(s, request_id)
        out.append(section(f"#{req.id} {TITLES.get(req.kind, 'Request')}: {mention(req.requester)} asks for {what(req)}" + (f"\n>{lit(req.reason, 200)}" if req.reason else "")))
        out.append(
            ActionsBlock(
                block_id=f"home_request:{req.id}",
                elements=[
                    ButtonElement(text="Approve", action_id=APPROVE, value=str(req.id), style="primary"),
                    ButtonElement(text="Deny", action_id=DENY, value=str(req.id), style="danger"),
                ],
            )
        )
    return out


def _budgets(s, asker: Asker, ws: Workspace) -> list[Block]:
    lines = budgets.budget_overview(s, asker.actor, ws.id)
    shown = [l for l in lines if l.limit_micros is not None or l.kind == "project"][:15]
    if not shown:
        return []
    rows = []
    for line in shown:
        name = "spending cap" if line.kind == "cap" else code(line.name)
        paused = " ⏸️ paused" if line.paused else ""
        rows.append(f"• {name} `{bar(line.spent_micros, line.limit_micros)}` {money(line.spent_micros)} / {money(line.limit_micros)}{paused}")
    return [section("*Budgets*\n" + "\n".join(rows))]
