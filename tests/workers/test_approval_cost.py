"""What one approved key request costs the store and Slack, through the whole pipeline.

decide_request → provision_key (the key made at the local provider, hash, reference and
encrypted reveal stored, the owner's DM) → request_decided (the approval message updated),
carried out by the real handlers on worker threads against the Slack double. The counts
are of statements sent to PostgreSQL and of Slack Web API calls; a change that adds a
round trip to the approval path fails here with the statements listed, rather than
showing up later as a missed benchmark target.
"""

from __future__ import annotations

import threading

import dramatiq
import pytest
from sqlalchemy import event

from store import decisions, keys
from store.models import ApiKey, KeyReveal
from store.types import Role
from tests import factories as f
from tests.workers.test_actors import APPROVALS, dm, setup_workspace

#: what one approval may cost at most: decide, provision, DM the owner, update the approval message
MAX_STATEMENTS = 20
#: chat.update of the approval message; conversations.open and chat.postMessage of the owner's DM
SLACK_CALLS = {"chat.update": 1, "conversations.open": 1, "chat.postMessage": 1}


class Statements(dramatiq.Middleware):
    """Every statement the decision and the workers send, each with who sent it (the decider or an action kind)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.mine = threading.local()
        self.deciding = threading.local()
        self._lock = threading.Lock()

    def before_process_message(self, broker, message) -> None:
        self.mine.actor = message.actor_name

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        self.mine.actor = None

    def statement(self, _conn, _cursor, sql, _params, _context, _many) -> None:
        who = getattr(self.mine, "actor", None) or ("decide_request" if getattr(self.deciding, "on", False) else None)
        if who is None:
            return  # the test's own reads (settle's look for due actions)
        with self._lock:
            self.seen.append((who, " ".join(sql.split())))

    def listing(self) -> str:
        return "\n".join(f"{i:3d} {who:<18} {sql[:160]}" for i, (who, sql) in enumerate(self.seen, 1))


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # the store production runs on; SQLite's count differs
def test_one_approval_costs_at_most_twenty_statements_and_three_slack_calls(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()  # the approval message is up: that is the request's cost, not the approval's
    slack_api.calls.clear()

    counter = Statements()
    stub_workers.broker.add_middleware(counter)
    event.listen(db.engine, "before_cursor_execute", counter.statement)
    try:
        counter.deciding.on = True
        db.run(decisions.decide_request, admin, req.id, approve=True)
        counter.deciding.on = False
        stub_workers.settle()
    finally:
        event.remove(db.engine, "before_cursor_execute", counter.statement)

    # It all happened: the key stored with its reveal, the owner told, the approval message updated.
    with db.session() as s:
        key = s.query(ApiKey).filter_by(request_id=req.id).one()
        assert s.get(KeyReveal, key.id).ciphertext is not None
    assert any("is ready" in m.text for m in slack_api.channel_messages(dm(dev)))
    [approval] = slack_api.channel_messages(APPROVALS)
    assert approval.updated == 1 and "Approved" in str(approval.blocks)

    assert len(counter.seen) <= MAX_STATEMENTS, f"one approval sent {len(counter.seen)} statements (at most {MAX_STATEMENTS}):\n{counter.listing()}"
    calls = {}
    for call in slack_api.calls:
        calls[call.method] = calls.get(call.method, 0) + 1
    assert calls == SLACK_CALLS, f"Slack calls of one approval: {calls}"
