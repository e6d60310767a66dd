"""SCIM over real HTTP: the web app as production mounts /scim/v2, a workspace, and its token."""

from __future__ import annotations

import httpx
import pytest

from bot.web import WebApp
from purser.settings import Settings
from purser.wiring import add_gateway, add_scim
from sandbox.serve import serve_in_thread
from store import scim
from tests import factories as f
from tests.gateway.test_nginx import _no_bolt
from tests.test_cli import cli, migrated  # noqa: F401  (the CLI's fixtures, for `purser scim token`)

SCIM_JSON = "application/scim+json"


@pytest.fixture
def served(db):
    """The web app (gateway and SCIM) over HTTP; yields its URL."""
    web = WebApp(db, bolt_app=_no_bolt(), signing_secret="unused")
    settings = Settings(REDIS_URL=None)
    add_gateway(web, db, settings)
    add_scim(web, db, settings)
    server = serve_in_thread(web)
    yield server.url
    server.stop()
    web.gateway.close()


@pytest.fixture
def provisioned(db, served):
    """A workspace with one Admin (who made the token), and an httpx client carrying its SCIM token."""
    ws = f.workspace(db, "acme")
    admin = f.member(db, ws, "admin")
    made = db.run(scim.create_token, admin, ws, "okta")
    client = httpx.Client(base_url=served + "/scim/v2", headers={"Authorization": f"Bearer {made.secret}", "Content-Type": SCIM_JSON}, timeout=10)
    yield ws, admin, client, made
    client.close()
