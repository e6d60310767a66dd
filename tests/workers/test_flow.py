"""Decisions carried out: keys made at the provider and delivered, with every actor run through a real broker."""

from __future__ import annotations

from store import keys
from store.models import Action, ApiKey
from store.money import parse_money
from store.decisions import decide_request
from store.types import ActionStatus, Role
from tests import factories as f


def test_approved_key_is_provisioned_and_owner_gets_reveal_button(db, stub_workers, slack_api):
    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(lambda s: __import__("store.workspaces", fromlist=["x"]).set_channels(s, f.OPERATOR, ws, approvals="C0APPROVE"))
    req = db.run(keys.request_key, dev, ws, name="search-bot", limit_micros=parse_money("$20"))
    stub_workers.settle()
    [approval] = slack_api.channel_messages("C0APPROVE")
    assert any(b.get("type") == "actions" for b in approval.blocks)
    db.run(decide_request, admin, req.id, approve=True)
    stub_workers.settle()
    with db.session() as s:
        [key] = s.query(ApiKey).all()
        assert key.secret_hash and key.prefix.startswith("sk-purser-")
        assert {a.status for a in s.query(Action).all()} == {ActionStatus.DONE}
    dm = slack_api.channel_messages("D" + dev.slack_user_id[1:])
    assert any("is ready" in m.text for m in dm)
    assert approval.updated >= 1 and "Approved" in str(approval.blocks)
