"""POST /v1/usage for a key on a leased provider (OpenRouter): its workspace's leases are topped up at once.

The spend a gateway reports asks for one rebalance of the key's workspace (store.ingest);
the rebalance reads the keys' real usage at OpenRouter first, so nothing is counted twice.
A workspace with a rebalance still waiting gets no second one; the provider's own sync,
which rebalances by itself, asks for none.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from bot.web import WebApp
from purser.settings import Settings
from purser.wiring import add_gateway
from sandbox.serve import serve_in_thread
from store import keys, outbox
from store.models import Action, UsageEvent
from store.provider_sync import sync_provider_usage
from store.secrets import mint_local_secret
from store.types import ActionKind, ActionStatus
from tests import factories as f
from tests.gateway.test_nginx import _no_bolt

TOKEN = "ingest-token"


@pytest.fixture
def url(db):
    web = WebApp(db, bolt_app=_no_bolt(), signing_secret="unused")
    add_gateway(web, db, Settings(PURSER_INGEST_TOKEN=TOKEN))
    server = serve_in_thread(web)
    yield server.url
    server.stop()
    web.gateway.close()


def openrouter_key(db, workspace_id: int, name: str) -> tuple[int, str]:
    """A key as the worker stores one OpenRouter made: its secret, and its hash as the reference."""
    db.run(keys.request_key, f.member(db, workspace_id), workspace_id, name=name)
    secret = mint_local_secret()

    def store(s):
        action = s.scalars(select(Action).where(Action.kind == ActionKind.PROVISION_KEY, Action.status == ActionStatus.PENDING)).one()
        made = keys.provision_key(s, action.id, secret=secret, provider="openrouter", provider_ref=f"hash-{name}")
        outbox.mark_done(s, action)
        return made.key.id

    return db.run(store), secret


def report(url: str, secret: str, external_id: str, amount: float = 0.5) -> str:
    answer = httpx.post(url + "/v1/usage", json={"events": [{"external_id": external_id, "key": secret, "amount_usd": amount}]}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    return answer.json()["results"][0]["result"]


def rebalances(db) -> list[tuple[int, bool]]:
    """The rebalance actions still to finish: (workspace, taken by a worker)."""
    with db.session() as s:
        found = s.execute(select(Action.workspace_id, Action.claimed_until).where(Action.kind == ActionKind.REBALANCE_LEASES, Action.status == ActionStatus.PENDING).order_by(Action.created_at))
        return [(w, claimed is not None) for w, claimed in found]


def test_spend_reported_for_a_leased_key_asks_once_for_a_rebalance_of_its_workspace(db, url):
    leased = f.workspace(db, "leased", "development", provider="openrouter")
    local = f.workspace(db, "local", "development")
    key_id, secret = openrouter_key(db, leased, "bot")
    _, local_secret = f.key(db, local, f.member(db, local), "bot")
    db.run(lambda s: [outbox.complete(s, a) for a in s.scalars(select(Action.id).where(Action.status == ActionStatus.PENDING))])

    assert report(url, local_secret, "local-1") == "accepted"
    assert rebalances(db) == []  # a local key holds no lease: /v1/authz asks Purser every call

    # The provider reports an OpenRouter key's spend itself (the sync reads it): recorded here
    # too it would count twice. The report is a signal to read it now.
    assert report(url, secret, "or-1") == "noted"
    assert rebalances(db) == [(leased, False)]
    assert report(url, secret, "or-2") == "noted"
    assert report(url, secret, "or-1") == "noted"
    assert report(url, secret, "free", amount=0) == "noted"
    assert rebalances(db) == [(leased, False)]  # the waiting one will read every spend so far
    with db.session() as s:
        assert s.scalars(select(UsageEvent).where(UsageEvent.key_id == key_id)).all() == []

    [waiting] = db.run(lambda s: list(s.scalars(select(Action.id).where(Action.kind == ActionKind.REBALANCE_LEASES, Action.status == ActionStatus.PENDING))))
    assert db.run(outbox.claim, waiting) is not None  # a worker took it: it may have read the usage already
    assert report(url, secret, "or-3") == "noted"
    assert rebalances(db) == [(leased, True), (leased, False)]

    db.run(lambda s: [outbox.complete(s, a) for a in s.scalars(select(Action.id).where(Action.status == ActionStatus.PENDING))])
    db.run(sync_provider_usage, "openrouter", [("hash-bot", 9_000_000)])  # the sync rebalances by itself
    assert rebalances(db) == []
