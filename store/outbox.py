"""The outbox: actions for the workers, written in the decision's own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import Action
from store.types import ActionStatus, utcnow


def emit(
    s: Session,
    kind: str,
    *,
    workspace_id: int | None,
    payload: dict[str, Any] | None = None,
    request_id: int | None = None,
    run_after: datetime | None = None,
) -> Action:
    action = Action(
        id=uuid.uuid4().hex,
        kind=kind,
        workspace_id=workspace_id,
        request_id=request_id,
        payload=payload or {},
        run_after=run_after or utcnow(),
    )
    s.add(action)
    s.flush()
    # Database.run hands these to the queue once the transaction has committed.
    s.info.setdefault("new_actions", []).append(action.id)
    return action


def load_for_run(s: Session, action_id: str) -> Action | None:
    """The action, locked, if it still has to run; None when it is done, failed or unknown."""
    action = s.scalars(select(Action).where(Action.id == action_id).with_for_update()).one_or_none()
    if action is None or action.status is not ActionStatus.PENDING:
        return None
    action.attempts += 1
    return action


def mark_done(s: Session, action: Action) -> None:
    action.status = ActionStatus.DONE
    action.finished_at = utcnow()
    action.error = None


def mark_failed(s: Session, action_id: str, reason: str) -> Action | None:
    action = s.scalars(select(Action).where(Action.id == action_id).with_for_update()).one_or_none()
    if action is None or action.status is not ActionStatus.PENDING:
        return None
    action.status = ActionStatus.FAILED
    action.error = reason[:2000]
    action.finished_at = utcnow()
    return action


def due(s: Session, *, older_than: timedelta, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Pending actions whose time has come and that have waited at least ``older_than``."""
    now = now or utcnow()
    return list(
        s.scalars(
            select(Action.id)
            .where(Action.status == ActionStatus.PENDING, Action.run_after <= now - older_than)
            .order_by(Action.run_after)
            .limit(limit)
        )
    )


def postpone(s: Session, action_id: str, until: datetime) -> None:
    s.execute(update(Action).where(Action.id == action_id).values(run_after=until))
