"""App Home: your workspaces and keys, the requests waiting for you, and budgets at a glance."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import Block, ImageBlock
from slack_sdk.models.views import View

from bot.blocks.common import bar, code, context, divider, header, lit, mention, money, section
from bot.blocks.requests import TITLES, decision_buttons, what
from bot.context import Asker
from bot.chart_text import describe_spend, spend_chart
from store import overview
from store.approvals import PolicyView
from store.budgets import BudgetLine
from store.db import Database
from store.home_charts import HomeChart, home_charts
from store.overview import Seat
from store.types import utcnow
from store.views import KeyView, RequestView

MAX_BLOCKS = 100
#: each workspace takes a handful of blocks; past this many the rest would not fit anyway
MOST_WORKSPACES = 15
#: workspaces whose chart is drawn: each costs a worker a rendering an hour
CHARTED = 3


def home_view(db: Database, asker: Asker, now: datetime | None = None) -> View:
    now = now or utcnow()
    seats = db.run(overview.home, asker.team_id, asker.user_id, most=MOST_WORKSPACES)
    drawn = db.run(home_charts, asker.team_id, asker.user_id, seats[:CHARTED], now) if seats else {}
    charts = {seat.workspace_id: _chart(drawn[seat.workspace_id], seat.sees_all) for seat in seats if seat.workspace_id in drawn}
    return View(type="home", blocks=_blocks(seats, charts)[:MAX_BLOCKS])


def _chart(chart: HomeChart, sees_all: bool) -> ImageBlock:
    title = f"{'Spend' if sees_all else 'Your spend'} this month, drawn at {chart.drawn_hour:02d}:00 UTC"
    return ImageBlock(slack_file={"id": chart.file_id}, alt_text=describe_spend(spend_chart(chart.data)), title=title)


def _blocks(seats: list[Seat], charts: dict[int, ImageBlock]) -> list[Block]:
    blocks: list[Block] = [header("Purser")]
    if not seats:
        return blocks + [section("You are not in any Purser workspace yet. Ask an admin to `/ai-invite` you.")]
    blocks.append(section("*Your workspaces*\n" + "\n".join(f"• {code(seat.slug)} ({seat.environment}) — {seat.role}" for seat in seats)))
    for seat in seats:
        blocks += [divider(), header(f"{seat.slug} · {seat.role}")]
        if seat.keys is not None:
            blocks += _keys(seat.keys)
        if seat.pending is not None:
            blocks += _pending(seat.pending)
        blocks += _budgets(seat.budgets)
        if seat.policy is not None:
            blocks.append(_policy(seat.policy))
        if seat.workspace_id in charts:
            blocks.append(charts[seat.workspace_id])
        if len(blocks) > MAX_BLOCKS - 10:
            blocks.append(context("More workspaces than fit here: use `/ai-workspace list`."))
            break
    return blocks


def _keys(views: list[KeyView]) -> list[Block]:
    if not views:
        return [section("*Your keys:* none yet — `/ai-key new <name>`")]
    lines = [f"• {code(k.name)} {code(k.prefix + '…')} · {('project ' + code(k.project)) if k.project else 'no project'} · {money(k.spent_micros)} of {money(k.limit_micros)} · {k.status}" for k in views]
    return [section("*Your keys*\n" + "\n".join(lines))]


def _pending(waiting: list[RequestView]) -> list[Block]:
    if not waiting:
        return [context("No requests waiting.")]
    out: list[Block] = [section(f"*Waiting for a decision* ({len(waiting)})")]
    for req in waiting:
        out.append(section(f"#{req.id} {TITLES.get(req.kind, 'Request')}: {mention(req.requester)} asks for {what(req)}" + (f"\n>{lit(req.reason, 200)}" if req.reason else "")))
        out.append(decision_buttons(req.id, block_id=f"home_request:{req.id}"))
    return out


def _policy(view: PolicyView) -> Block:
    rules = [*view.own, *view.defaults]
    shown = " · ".join(code(rule) for rule in rules[:8]) + (f" · and {len(rules) - 8} more" if len(rules) > 8 else "")
    return context(f"*Approval policy* (the first rule that matches decides): {shown} — `/ai-workspace policy show`")


def _budgets(lines: tuple[BudgetLine, ...]) -> list[Block]:
    shown = [l for l in lines if l.limit_micros is not None or l.kind == "project"][:15]
    if not shown:
        return []
    rows = []
    for line in shown:
        name = "spending cap" if line.kind == "cap" else code(line.name)
        paused = " ⏸️ paused" if line.paused else ""
        rows.append(f"• {name} `{bar(line.spent_micros, line.limit_micros)}` {money(line.spent_micros)} / {money(line.limit_micros)}{paused}")
    return [section("*Budgets*\n" + "\n".join(rows))]
