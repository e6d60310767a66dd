"""Migrations kept honest: one head, no drift from the models, one step down and up again — on both stores."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import MetaData, Table, create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from purser.cli import app
from purser.settings import get_settings
from store.db import make_engine
from store.migrate import alembic_config, check, downgrade, upgrade
from store.models import Base
from tests.services import PG_URL, require

SCRIPTS = ScriptDirectory.from_config(alembic_config("sqlite://"))
TABLES = set(Base.metadata.tables)


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture
def fresh_pg_url() -> str:
    """An empty PostgreSQL database of this test's own, dropped afterwards."""
    require(PG_URL, "PostgreSQL")
    name = f"purser_migrate_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path) -> str:
    """An empty store, not yet migrated, on each database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'purser.db'}"
    return request.getfixturevalue("fresh_pg_url")


def test_migrations_have_exactly_one_head():
    assert len(SCRIPTS.get_heads()) == 1, SCRIPTS.get_heads()


def test_upgraded_schema_matches_the_models(empty_url):
    upgrade(empty_url)
    assert current_revision(empty_url) == SCRIPTS.get_current_head()
    assert tables(empty_url) == TABLES
    check(empty_url)  # raises when autogenerate would write a new migration


def test_check_notices_a_schema_that_drifted_from_the_models(empty_url):
    upgrade(empty_url)
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_audit_events_at"))
    engine.dispose()
    with pytest.raises(CommandError, match="New upgrade operations detected"):
        check(empty_url)


def test_one_step_down_and_up_again_leaves_the_schema_matching_the_models(empty_url):
    head = SCRIPTS.get_revision(SCRIPTS.get_current_head())
    upgrade(empty_url)
    downgrade(empty_url, "-1")
    assert current_revision(empty_url) == head.down_revision
    if head.down_revision is None:
        assert tables(empty_url) == set()  # the first migration undone leaves nothing behind
    upgrade(empty_url)
    assert current_revision(empty_url) == head.revision
    assert tables(empty_url) == TABLES
    check(empty_url)


@pytest.fixture
def settings_from_env(monkeypatch):
    """get_settings is cached: start and end each test with a fresh read of the environment."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_purser_db_upgrade_migrates_the_database_named_by_database_url(settings_from_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh' / 'purser.db'}"
    settings_from_env.setenv("DATABASE_URL", url)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Store is at head" in result.output
    assert current_revision(url) == SCRIPTS.get_current_head()
    assert tables(url) == TABLES
    check(url)


def _insert(conn, table_name: str, **values) -> int:
    """A row into the table as the database has it now, the models' Python defaults filling what is left."""
    table = Table(table_name, MetaData(), autoload_with=conn)
    model = Base.metadata.tables[table_name]
    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key or column.server_default is not None:
            continue
        default = model.columns[column.name].default
        values[column.name] = default.arg(None) if default.is_callable else default.arg
    return conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one()


def test_keys_ended_before_leases_existed_are_not_announced_when_they_arrive(empty_url, clock):
    """Migration 0011: a key whose end had passed gets a row marked announced, so the clock's first run tells no one of it months late; a key still running gets none."""
    clock.move_to(datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc))
    upgrade(empty_url, "0010")
    engine = make_engine(empty_url)
    made = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        ws = _insert(conn, "workspaces", team_id="T1", slug="prod", name="prod", environment="production", key_policy="approval")
        owner = _insert(conn, "members", workspace_id=ws, role="developer", slack_user_id="U1")
        key = {"workspace_id": ws, "member_id": owner, "provider": "local", "created_at": made}
        ended = _insert(conn, "api_keys", name="ended", prefix="pk-1", secret_hash="1" * 64, expires_at=datetime(2026, 11, 8, tzinfo=timezone.utc), **key)
        _insert(conn, "api_keys", name="running", prefix="pk-2", secret_hash="2" * 64, expires_at=datetime(2026, 12, 7, tzinfo=timezone.utc), **key)
        _insert(conn, "api_keys", name="revoked", prefix="pk-3", secret_hash="3" * 64, expires_at=made, status="revoked", **key)
    upgrade(empty_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key_id, length_minutes, expired_at IS NOT NULL, warned_hour_at IS NOT NULL FROM key_leases")).all()
    engine.dispose()
    assert rows == [(ended, 7 * 24 * 60, True, True)]
