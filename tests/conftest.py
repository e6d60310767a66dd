"""Fixtures: a migrated store on SQLite and on real PostgreSQL, and the process cipher."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from store.db import Database
from store.migrate import upgrade
from store.models import Base
import store.models_scim  # noqa: F401  (SCIM's tables are emptied between tests too)
import store.models_spend  # noqa: F401  (and the hourly spend)
import store.models_statements  # noqa: F401  (and the statements')
import store.models_spikes  # noqa: F401  (and spike alerts')
import store.models_reviews  # noqa: F401  (and access reviews')
import store.models_leases  # noqa: F401  (and keys' lease notices)
import store.models_policy  # noqa: F401  (and the approval rules' and approvals')
import store.models_raises  # noqa: F401  (and temporary budget raises')
from store.secrets import Cipher, use_cipher
from tests.services import IN_CI, PG_URL, REDIS_URL, answering, require

pytest_plugins = ["tests.clocks", "tests.fixtures_workers"]


ROOT = Path(__file__).resolve().parents[1]
_BEFORE = pytest.StashKey[set[str] | None]()


def _checkout_changes() -> set[str] | None:
    """`git status --porcelain` of the checkout, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(done.stdout.splitlines())


def _asked_for(changes: set[str]) -> set[str]:
    """The change `make screenshot` is run to make: the README's picture, named by PURSER_SCREENSHOT."""
    shot = os.environ.get("PURSER_SCREENSHOT")
    if not shot:
        return set()
    path = Path(shot).resolve()
    # porcelain lines are "XY path", the path relative to the checkout
    return {line for line in changes if (ROOT / line[3:]).resolve() == path}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _checkout_changes()
    if IN_CI:
        missing = [name for name, url in (("PostgreSQL", PG_URL), ("Redis", REDIS_URL)) if not answering(url)]
        if missing:
            raise pytest.UsageError(f"CI=true but {', '.join(missing)} not answering; .ci/run should have started it.")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves the checkout as it found it: tests write under var/ or a temporary folder."""
    before = session.config.stash.get(_BEFORE, None)
    after = _checkout_changes()
    if before is None or after is None:
        return
    after -= _asked_for(after)
    if after <= before:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("the tests changed the checkout (git status --porcelain):", red=True)
        for line in sorted(after - before):
            reporter.write_line(f"  {line}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True, scope="session")
def _cipher():
    use_cipher(Cipher(Cipher.generate()))
    yield
    use_cipher(None)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "purser.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A fresh database for this test session, migrated to head, dropped at the end."""
    require(PG_URL, "PostgreSQL")
    name = f"purser_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_pg(db: Database) -> None:
    # DELETE in dependency order costs a few milliseconds where TRUNCATE costs a hundred.
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def pg_db(pg_url) -> Database:
    db = Database(pg_url)
    _empty_pg(db)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_db(sqlite_template, tmp_path) -> Database:
    path = tmp_path / "purser.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request) -> Database:
    """The same test on both stores."""
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


@pytest.fixture
def redis_url() -> str:
    require(REDIS_URL, "Redis")
    return REDIS_URL
