"""`/ai-workspace scim …` for Admins, and `purser scim token` for the operator."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.commands import workspace
from bot.context import Asker
from bot.replies import guarded
from store import scim
from store.models_scim import ScimRoleMap, ScimToken
from store.secrets import hash_secret
from store.types import Role
from store.workspaces import DEFAULT_TEAM
from tests import factories as f
from tests.test_cli import ok

TOKEN = re.compile(r"`(purser-scim-[A-Za-z0-9_-]+)`")


def say(db, user: str, text: str) -> str:
    return guarded("/ai-workspace", workspace.handle, db, Asker(DEFAULT_TEAM, user), text).text


def test_an_admin_makes_a_token_maps_groups_and_revokes(sqlite_db):
    db = sqlite_db
    ws = f.workspace(db, "acme")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    made = say(db, admin, "scim token okta")
    secret = TOKEN.search(made).group(1)
    assert "shown this once" in made and "/scim/v2" in made
    assert db.run(scim.grant_for, secret).workspace_id == ws
    with db.session() as s:
        assert s.scalars(select(ScimToken.secret_hash)).one() == hash_secret(secret)

    assert "Developers here" in say(db, admin, "scim map Engineering Team developer")
    assert "at least a Viewer" in say(db, admin, "scim default viewer")
    shown = say(db, admin, "scim")
    assert "`okta`" in shown and "Engineering Team → Developer (not pushed yet)" in shown and "everyone provisioned → Viewer" in shown
    with db.session() as s:
        assert {(m.name_key, m.role) for m in s.scalars(select(ScimRoleMap))} == {("engineering team", Role.DEVELOPER), ("*", Role.VIEWER)}
    assert "no role here any more" in say(db, admin, "scim default none")
    assert "gives no role" in say(db, admin, "scim unmap engineering team")
    assert "Revoked" in say(db, admin, "scim revoke okta")
    assert db.run(scim.grant_for, secret) is None


def test_a_developer_cannot_make_a_token(sqlite_db):
    db = sqlite_db
    ws = f.workspace(db, "acme")
    f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    answer = say(db, dev, "scim token")
    assert "Only an Admin" in answer and "purser-scim-" not in answer


def test_the_operator_makes_a_token(cli):
    f.workspace(cli, "acme")
    out = ok("scim", "token", "acme", "--name", "entra")
    secret = next(line for line in out.splitlines() if line.startswith("purser-scim-"))
    assert cli.run(scim.grant_for, secret).name == "entra"
