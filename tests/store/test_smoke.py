"""The main story through the store: ask, approve, provision, reveal, spend, pause, resume."""

from __future__ import annotations

import pytest

from store import audit, budgets, keys
from store.errors import Conflict
from store.money import parse_money
from store.decisions import decide_request
from store.types import RequestState, Role
from tests import factories as f


def test_key_request_approved_provisioned_revealed_once(db):
    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=parse_money("$100"))
    req = db.run(keys.request_key, dev, ws, name="search-bot", project="search", limit_micros=parse_money("$20"))
    assert req.state is RequestState.PENDING
    db.run(decide_request, admin, req.id, approve=True)
    [(key_id, secret)] = f.provision_pending(db)
    revealed = db.run(keys.reveal_key, dev, key_id)
    assert revealed.secret == secret
    with pytest.raises(Conflict, match="already revealed"):
        db.run(keys.reveal_key, dev, key_id)
    with db.session() as s:
        assert audit.verify_chain(s, ws).ok


def test_spend_reaching_budget_pauses_and_raise_resumes(db):
    ws = f.workspace(db, "dev", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    admin = f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search", budget=parse_money("$10"))
    key_id, _ = f.key(db, ws, dev, "bot", project="search", limit=parse_money("$5"))
    result = f.spend(db, key_id, parse_money("$8"))
    assert [c.threshold for c in result.crossings] == [80]
    result = f.spend(db, key_id, parse_money("$2"))
    assert result.paused == ["project:search"]
    db.run(budgets.set_project_budget, admin, ws, "search", parse_money("$20"))
    with db.session() as s:
        [line] = [l for l in budgets.evaluate_budgets(s, s.get(__import__("store.models", fromlist=["Workspace"]).Workspace, ws)) if l.kind == "project"]
        assert not line.paused and line.spent_micros == parse_money("$10")
