"""The outbox: actions for the workers, written in the decision's own transaction.

Workers claim an action with a short lease before working on it, so a duplicate
delivery (the sweeper, a redelivered message) skips it, and a worker that dies
mid-action leaves a lease that lapses and lets the sweeper hand the action out again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, cast, func, insert, literal, or_, select, union_all, update
from sqlalchemy.orm import Session

from store import audit
from store.db import NewAction
from store.models import Action, Request
from store.types import ActionKind, ActionStatus, utcnow

#: how long a claimed action is a worker's alone (``use_lease``: the settings may shorten it)
LEASE = timedelta(seconds=60)


def use_lease(seconds: float) -> None:
    global LEASE
    LEASE = timedelta(seconds=seconds)


def emit(
    s: Session,
    kind: ActionKind,
    *,
    workspace_id: int | None,
    payload: dict[str, Any] | None = None,
    request_id: int | None = None,
    run_after: datetime | None = None,
) -> Action:
    kind = ActionKind(kind)  # a kind no worker knows fails here, in the transaction that would have stranded it
    action = Action(
        id=uuid.uuid4().hex,
        kind=kind.value,
        workspace_id=workspace_id,
        request_id=request_id,
        payload=payload or {},
        run_after=run_after or utcnow(),
    )
    s.add(action)
    s.flush()
    # Database.run hands these to the queue once the transaction has committed.
    s.info.setdefault("new_actions", []).append(NewAction(action.id, kind, action.run_after))
    return action


def emit_unless_waiting(s: Session, kind: ActionKind, workspace_ids: list[int]) -> list[str]:
    """In one statement, an action of ``kind`` for each workspace that has none waiting (pending, not yet taken).

    For work that reads the world afresh when it runs — a rebalance reads the keys at the
    provider first — one waiting action serves every reason to run it, so a hot path (usage
    ingest) may ask on every batch without piling actions up. Returns the ids of those made.
    """
    kind = ActionKind(kind)
    wanted = [(uuid.uuid4().hex, w) for w in sorted(set(workspace_ids))]
    if not wanted:
        return []
    now = utcnow()
    # Typed, so PostgreSQL knows the columns of the rows made from parameters alone.
    rows = [select(cast(literal(action_id), String(32)).label("id"), cast(literal(w), BigInteger).label("workspace_id")) for action_id, w in wanted]
    asked = (union_all(*rows) if len(rows) > 1 else rows[0]).subquery("asked")
    waiting = select(Action.id).where(Action.kind == kind.value, Action.workspace_id == asked.c.workspace_id, Action.status == ActionStatus.PENDING, Action.claimed_until.is_(None))
    c = Action.__table__.c
    made = s.execute(
        insert(Action.__table__)
        .from_select(
            [c.id, c.kind, c.workspace_id, c.payload, c.status, c.attempts, c.run_after, c.created_at],
            select(
                asked.c.id,
                literal(kind.value, c.kind.type),
                asked.c.workspace_id,
                literal({}, c.payload.type),
                literal(ActionStatus.PENDING, c.status.type),
                literal(0, c.attempts.type),
                literal(now, c.run_after.type),
                literal(now, c.created_at.type),
            ).where(~waiting.exists()),
        )
        .returning(c.id)
    ).scalars().all()
    s.info.setdefault("new_actions", []).extend(NewAction(action_id, kind, now) for action_id in made)
    return list(made)


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of an action, detached from any session."""

    id: str
    kind: str
    workspace_id: int | None
    request_id: int | None
    payload: dict[str, Any]
    attempts: int
    run_after: datetime


def claim(s: Session, action_id: str, now: datetime | None = None) -> Claimed | None:
    """Take the action for one lease; None when it is finished, unknown, not due, or held by another worker."""
    now = now or utcnow()
    # One statement: the UPDATE locks the row and checks it, so of two workers claiming at
    # once the second, once the first commits, finds the lease taken and gets nothing.
    row = s.execute(
        update(Action)
        .where(
            Action.id == action_id,
            Action.status == ActionStatus.PENDING,
            Action.run_after <= now,
            or_(Action.claimed_until.is_(None), Action.claimed_until <= now),
        )
        .values(claimed_until=now + LEASE, attempts=Action.attempts + 1)
        .returning(Action.id, Action.kind, Action.workspace_id, Action.request_id, Action.payload, Action.attempts, Action.run_after)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    return Claimed(row.id, row.kind, row.workspace_id, row.request_id, dict(row.payload), row.attempts, row.run_after)


def renew(s: Session, action_id: str, attempt: int, now: datetime | None = None) -> bool:
    """Extend a running action's lease — only while this attempt still holds it (not released, finished, or re-claimed)."""
    now = now or utcnow()
    result = s.execute(
        update(Action)
        .where(Action.id == action_id, Action.status == ActionStatus.PENDING, Action.attempts == attempt, Action.claimed_until.is_not(None))
        .values(claimed_until=now + LEASE)
    )
    return result.rowcount == 1


def release(s: Session, action_id: str, *, retry_at: datetime | None = None) -> None:
    """Give the lease back after a transient failure; the action is due again at ``retry_at``.

    Until then neither the sweeper nor an early delivery can claim it (``claim`` and ``due``
    both wait for run_after), so the retry's backoff holds whoever hands the action out.
    """
    values: dict[str, Any] = {"claimed_until": None}
    if retry_at is not None:
        values["run_after"] = retry_at
    s.execute(update(Action).where(Action.id == action_id, Action.status == ActionStatus.PENDING).values(**values))


def complete(s: Session, action_id: str) -> None:
    s.execute(
        update(Action)
        .where(Action.id == action_id, Action.status == ActionStatus.PENDING)
        .values(status=ActionStatus.DONE, finished_at=utcnow(), error=None, claimed_until=None)
    )


def fail(s: Session, action_id: str, reason: str) -> Action | None:
    """Give up on an action for good; the reason is what the requester will read."""
    action = s.scalars(select(Action).where(Action.id == action_id).with_for_update()).one_or_none()
    if action is None or action.status is not ActionStatus.PENDING:
        return None
    action.status, action.error, action.finished_at, action.claimed_until = ActionStatus.FAILED, reason[:2000], utcnow(), None
    if action.workspace_id is not None:
        audit.record(s, workspace_id=action.workspace_id, actor="system:worker", action="action.fail", resource=f"action:{action.kind}", details={"action": action.id, "reason": reason[:500]})
    if action.kind != "action_failed":  # a failed notice of failure is only logged, never re-notified
        emit(s, ActionKind.ACTION_FAILED, workspace_id=action.workspace_id, request_id=action.request_id, payload={"action_id": action.id})
    return action


def due(s: Session, *, older_than: timedelta = timedelta(seconds=30), now: datetime | None = None, limit: int = 500) -> list[NewAction]:
    """Pending actions that should have run by now and that no live worker holds."""
    now = now or utcnow()
    rows = s.execute(
        select(Action.id, Action.kind, Action.run_after)
        .where(
            Action.status == ActionStatus.PENDING,
            Action.run_after <= now - older_than,
            or_(Action.claimed_until.is_(None), Action.claimed_until <= now),
        )
        .order_by(Action.run_after)
        .limit(limit)
    )
    return [NewAction(*row) for row in rows]


def get(s: Session, action_id: str) -> Action | None:
    return s.get(Action, action_id)


def pending_of(s: Session, kind: ActionKind, request_id: int) -> str | None:
    """The id of an action of ``kind`` for this request that is still pending (neither done nor given up)."""
    return s.scalars(select(Action.id).where(Action.kind == kind, Action.request_id == request_id, Action.status == ActionStatus.PENDING).limit(1)).first()


def requester_of(s: Session, action: Action) -> str | None:
    """The Slack user who asked for what this action does, if anyone did."""
    if action.request_id is None:
        return None
    req = s.get(Request, action.request_id)
    return req.requester.slack_user_id if req and req.requester else None


def mark_done(s: Session, action: Action) -> None:
    complete(s, action.id)


def stalled(s: Session, older_than: timedelta) -> int:
    """How many actions were due ``older_than`` ago and no worker holds: nobody is consuming the queue."""
    now = utcnow()
    return s.scalar(
        select(func.count()).select_from(Action).where(
            Action.status == ActionStatus.PENDING, Action.run_after <= now - older_than, or_(Action.claimed_until.is_(None), Action.claimed_until <= now)
        )
    ) or 0
