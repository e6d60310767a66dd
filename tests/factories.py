"""Build state through the public operations, as Slack, the workers and the CLI would."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

from store import budgets, keys, members, workspaces
from store.db import Database
from store.permissions import Actor
from store.secrets import mint_local_secret
from store.types import ActionStatus, Role
from store.ingest import UsageIn, ingest_usage

OPERATOR = Actor.operator("test")
_ids = itertools.count(1)


def user_id() -> str:
    return f"U{next(_ids):08d}"


def workspace(db: Database, slug: str = "acme", environment: str = "production", **kwargs) -> int:
    return db.run(workspaces.create_workspace, OPERATOR, slug=slug, environment=environment, **kwargs).id


def member(db: Database, workspace_id: int, role: Role | str = Role.DEVELOPER, slack_user_id: str | None = None) -> Actor:
    uid = slack_user_id or user_id()
    db.run(members.add_member, OPERATOR, workspace_id, role=role, slack_user_id=uid)
    return Actor.slack(uid)


def member_id(db: Database, workspace_id: int, actor: Actor) -> int:
    return db.run(lambda s: members.find_member(s, workspace_id, actor.slack_user_id).id)


def project(db: Database, workspace_id: int, slug: str = "search", budget: int | None = None, period: str = "monthly") -> int:
    return db.run(budgets.create_project, OPERATOR, workspace_id, slug, budget_micros=budget, period=period).id


def provision_pending(db: Database) -> list[tuple[int, str]]:
    """Play the worker for provision_key actions: mint local secrets, store the keys."""
    from sqlalchemy import select

    from store.models import Action
    from store.outbox import mark_done

    made = []
    with db.session() as s:
        pending = list(s.scalars(select(Action.id).where(Action.kind == "provision_key", Action.status == ActionStatus.PENDING)))
    for action_id in pending:
        secret = mint_local_secret()

        def store(s, action_id=action_id, secret=secret):
            result = keys.provision_key(s, action_id, secret=secret, provider="local", provider_ref=None)
            mark_done(s, s.get(Action, action_id))
            return result.key.id

        made.append((db.run(store), secret))
    return made


def key(db: Database, workspace_id: int, owner: Actor, name: str = "bot", project: str | None = None, limit: int | None = None, lease_minutes: int | None = None) -> tuple[int, str]:
    """A live key for ``owner`` (approved by an admin if the policy wants it); ``lease_minutes``: it ends that long after it is made."""
    req = db.run(keys.request_key, owner, workspace_id, name=name, project=project, limit_micros=limit, lease_minutes=lease_minutes)
    if req.state.value == "pending":
        from store.decisions import decide_request

        admin = member(db, workspace_id, Role.ADMIN)
        db.run(decide_request, admin, req.id, approve=True)
    made = provision_pending(db)
    assert made, "the key request should have produced a provision_key action"
    return made[-1]


def spend(db: Database, key_id: int, amount: int, external_id: str | None = None, at: datetime | None = None):
    event = UsageIn(external_id=external_id or f"ev-{next(_ids)}", key_id=key_id, amount_micros=amount, occurred_at=at or datetime.now(timezone.utc))
    return db.run(ingest_usage, [event])
