"""Engine, sessions, and the one way operations run: in a transaction, denials audited."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from datetime import datetime
from typing import Any, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import DomainError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_URL = "sqlite:///var/purser.db"
#: SQLSTATEs after which a transaction is safe to run again: deadlock victim, serialization failure
RETRYABLE = {"40P01", "40001"}
RETRIES = 3


class NewAction(NamedTuple):
    """An action a commit just wrote, as the relay needs it."""

    id: str
    kind: str
    run_after: datetime


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and pick psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _serialise_sqlite_writers(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)  # survive a PostgreSQL restart
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _serialise_sqlite_writers(engine: Engine) -> None:
    # SQLite has no row locks: every transaction takes the write lock up front
    # (BEGIN IMMEDIATE), which is what FOR UPDATE gives us on PostgreSQL.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL's recommended pairing: durable on commit but for power loss
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


ActionsHook = Callable[[list[NewAction]], None]
ChangesHook = Callable[[set[int]], None]

#: tables whose rows decide what a gateway's authorization check answers (a raise granted or
#: ended changes a project's limit without touching the project's row)
_AUTHZ_TABLES = {"workspaces", "projects", "api_keys", "members", "key_leases", "budget_raises"}


def _track_authz_changes(session: Session, _flush_context, _instances) -> None:
    """Note which workspaces' keys, projects, members or settings a flush touched."""
    changed = session.info.setdefault("changed_workspaces", set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table in _AUTHZ_TABLES:
            workspace_id = obj.id if table == "workspaces" else getattr(obj, "workspace_id", None)
            if workspace_id is not None:
                changed.add(workspace_id)


class Database:
    """The store's handle: sessions, and ``run`` for operations."""

    def __init__(self, url: str = DEFAULT_URL, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.sessions, "before_flush", _track_authz_changes)
        self._action_hooks: list[ActionsHook] = []
        self._change_hooks: list[ChangesHook] = []
        self._local = threading.local()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def on_new_actions(self, hook: ActionsHook) -> None:
        """Call ``hook(new_actions)`` after each commit that wrote outbox actions."""
        self._action_hooks.append(hook)

    def on_authz_changes(self, hook: ChangesHook) -> None:
        """Call ``hook(workspace_ids)`` after each commit that changed what authorization answers there."""
        self._change_hooks.append(hook)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s:
            yield s

    def run(self, op: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run one operation in its own transaction.

        On success the transaction commits and the new outbox actions are handed to
        the hooks. A refusal of policy (``PermissionDenied``, ``LimitReached``) rolls
        everything back and then records the denial in the audit log, so a refused
        action changes nothing but leaves its trace.
        """
        self._local.deferred = False
        for attempt in range(1, RETRIES + 1):
            with self.sessions() as s:
                try:
                    result = op(s, *args, **kwargs)
                    s.commit()
                except DomainError as exc:
                    s.rollback()
                    if exc.audited:
                        self._audit_denial(exc)
                    raise
                except DBAPIError as exc:
                    s.rollback()
                    if attempt == RETRIES or getattr(exc.orig, "sqlstate", None) not in RETRYABLE:
                        raise
                    # PostgreSQL chose this transaction as a deadlock's victim (or a serialization
                    # failure): nothing of it was kept, so running it again is safe and is the fix.
                    log.info("retrying %s after %s (attempt %d)", getattr(op, "__name__", "an operation"), exc.orig.sqlstate, attempt)
                    time.sleep(random.uniform(0.005, 0.05) * attempt)
                    continue
                new_actions = list(s.info.pop("new_actions", []))
                changed = set(s.info.pop("changed_workspaces", set()))
                break
        if changed:
            self._notify(self._change_hooks, changed)
        if new_actions:
            self._announce(new_actions)
        return result

    def _audit_denial(self, exc: DomainError) -> None:
        denial = exc.details.get("denial")
        if not denial:
            return
        from store import audit

        with self.sessions() as s:
            audit.record(s, outcome="denied", **denial)
            s.commit()

    @staticmethod
    def _notify(hooks: list[ChangesHook], changed: set[int]) -> None:
        for hook in hooks:
            try:
                hook(changed)
            except Exception:  # caches fall back to their short TTL
                log.exception("could not announce changes to %d workspace(s)", len(changed))

    def _announce(self, actions: list[NewAction]) -> None:
        for hook in self._action_hooks:
            try:
                hook(actions)
            except Exception:  # the sweeper re-enqueues; committed work never fails here
                self._local.deferred = True
                log.exception("could not hand %d new action(s) to the queue; the sweeper will", len(actions))

    def deferred(self) -> bool:
        """Did this thread's last operation commit work the queue could not take yet (it will run later)?"""
        return getattr(self._local, "deferred", False)

    def dispose(self) -> None:
        self.engine.dispose()
