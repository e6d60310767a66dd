"""Many approvers clicking at once on a request that needs several, on PostgreSQL: one outcome, each approver once, one key."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from store import approvals, keys
from store.decisions import Decision, decide_request
from store.errors import Conflict, PermissionDenied
from store.models import Action, ApiKey, AuditEvent, Request
from store.models_policy import RequestApproval
from store.types import RequestState, Role
from tests import factories as f
from tests.store.test_concurrency import assert_chain_verifies, race, split


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("policy", "needed"),
    [("key: 2 admins", Counter({Role.ADMIN: 2})), ("key: 2 admins + billing", Counter({Role.ADMIN: 2, Role.BILLING: 1}))],
    ids=["two-admins", "two-admins-and-billing"],
)
def test_ten_clicks_at_once_make_one_outcome_with_the_approvals_the_policy_asks_and_one_key(pg_db, policy, needed):
    db = pg_db
    ws = f.workspace(db, "prod", "production")
    admins = [f.member(db, ws, Role.ADMIN) for _ in range(5)]  # the most a workspace may have
    billing = [f.member(db, ws, Role.BILLING) for _ in range(3)]
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(approvals.set_policy, admins[0], ws, policy)
    req = db.run(keys.request_key, dev, ws, name="search-bot")
    # ten clicks: every Admin and Billing Manager, and two Admins clicking twice
    clickers = [*admins, *billing, admins[0], admins[1]]
    outcomes = race([lambda who=who: db.run(decide_request, who, req.id, approve=True) for who in clickers])
    # late clicks hear who decided; a second click its own approval; a Billing Manager a policy without them
    decided, refused = split(outcomes, (Conflict, PermissionDenied))

    finals = [d for d in decided if isinstance(d, Decision) and d.final]
    assert len(finals) == 1, f"{len(finals)} clicks decided the request"
    assert len(decided) == sum(needed.values()) and len(refused) == len(clickers) - len(decided)
    with db.session() as s:
        assert s.get(Request, req.id).state is RequestState.APPROVED
        given = list(s.execute(select(RequestApproval.member_id, RequestApproval.role).where(RequestApproval.request_id == req.id)))
        assert len({member for member, _ in given}) == len(given), "someone approved twice"
        assert Counter(role for _, role in given) == needed
        assert len(s.scalars(select(Action.id).where(Action.request_id == req.id, Action.kind == "provision_key")).all()) == 1
        outcome_events = s.scalars(
            select(AuditEvent.action).where(AuditEvent.resource == f"request:{req.id}", AuditEvent.action == "request.approve", AuditEvent.outcome == "ok")
        ).all()
        assert len(outcome_events) == 1
    f.provision_pending(db)
    f.provision_pending(db)  # a second pass finds nothing more to make
    with db.session() as s:
        assert len(s.scalars(select(ApiKey.id).where(ApiKey.request_id == req.id)).all()) == 1
    assert_chain_verifies(db, ws)
