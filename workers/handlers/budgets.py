"""Pauses and resumes at the provider, announced in the alerts channel; alerts, rollovers and temporary raises."""

from __future__ import annotations

from sqlalchemy import select

from bot.blocks import alerts as blocks
from store import outbox, raises
from store.alerts import forecast
from store.models import ApiKey, Project, Workspace
from store.outbox import Claimed
from store.types import BudgetKind, KeyStatus
from workers.handlers import completes
from workers.handlers.keys import apply_key_states
from workers.quota import rebalance
from workers.runtime import Runtime


def _announce(rt: Runtime, a: Claimed, channel: str | None, text_blocks) -> None:
    """Post the announcement and complete the action (in the transaction that stores the message's ts)."""
    if rt.slack is not None and channel:
        text, message = text_blocks
        rt.slack.post(f"action:{a.id}", channel, text, message, also=completes(a))
    else:
        rt.db.run(outbox.complete, a.id)


def _project_keys(s, project_id: int) -> list[int]:
    return list(s.scalars(select(ApiKey.id).where(ApiKey.project_id == project_id, ApiKey.status != KeyStatus.REVOKED)))


def _workspace_keys(s, workspace_id: int) -> list[int]:
    return list(s.scalars(select(ApiKey.id).where(ApiKey.workspace_id == workspace_id, ApiKey.status != KeyStatus.REVOKED)))


def pause_project(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        proj = s.get(Project, a.payload["project_id"])
        ws = s.get(Workspace, proj.workspace_id)
        key_ids, slug, channel, ws_slug = _project_keys(s, proj.id), proj.slug, ws.alerts_channel, ws.slug
    apply_key_states(rt, key_ids)
    _announce(rt, a, channel, blocks.paused("project", slug, a.payload.get("reason", "paused"), ws_slug))


def resume_project(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        proj = s.get(Project, a.payload["project_id"])
        ws = s.get(Workspace, proj.workspace_id)
        key_ids, slug, channel, ws_id = _project_keys(s, proj.id), proj.slug, ws.alerts_channel, ws.id
    apply_key_states(rt, key_ids)
    rebalance(rt, ws_id)  # its keys' leases grow with the budget that resumed it
    _announce(rt, a, channel, blocks.resumed("project", slug, a.payload.get("why", "resumed")))


def pause_workspace(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        ws = s.get(Workspace, a.payload["workspace_id"])
        key_ids, channel, slug = _workspace_keys(s, ws.id), ws.alerts_channel, ws.slug
    apply_key_states(rt, key_ids)
    _announce(rt, a, channel, blocks.paused("workspace", slug, a.payload.get("reason", "cap"), slug))


def resume_workspace(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        ws = s.get(Workspace, a.payload["workspace_id"])
        key_ids, channel, slug, ws_id = _workspace_keys(s, ws.id), ws.alerts_channel, ws.slug, ws.id
    apply_key_states(rt, key_ids)
    rebalance(rt, ws_id)
    _announce(rt, a, channel, blocks.resumed("workspace", slug, a.payload.get("why", "resumed")))


def post_alert(rt: Runtime, a: Claimed) -> None:
    p = a.payload
    with rt.db.session() as s:
        ws = s.get(Workspace, a.workspace_id)
        outlook = forecast(s, BudgetKind(p["kind"]), p["budget_id"], p["spent_micros"], p["limit_micros"]).describe()
        channel = ws.alerts_channel
    _announce(rt, a, channel, blocks.threshold_alert(p["kind"], p["name"], p["threshold"], p["spent_micros"], p["limit_micros"], p["period"], outlook))


def announce_rollover(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        ws = s.get(Workspace, a.workspace_id)
        channel, slug = ws.alerts_channel, ws.slug
    _announce(rt, a, channel, blocks.rollover(slug, a.payload.get("resumed", [])))


def announce_raise(rt: Runtime, a: Claimed) -> None:
    """A temporary raise began or ended: the leases follow the limit in force, and the alerts channel hears of it."""
    with rt.db.session() as s:
        notice = raises.raise_notice(s, a.payload["raise_id"])
        channel = s.get(Workspace, a.workspace_id).alerts_channel
    rebalance(rt, a.workspace_id)
    _announce(rt, a, channel, (blocks.raise_started if a.payload["event"] == "start" else blocks.raise_ended)(notice))


def nothing_at_the_provider(rt: Runtime, a: Claimed) -> None:
    """What lives in Purser alone (the store already did what it changes)."""
    rt.db.run(outbox.complete, a.id)
