"""A transaction PostgreSQL picks as a deadlock's victim is run again, not lost."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from store.models import Workspace
from tests import factories as f


@pytest.mark.postgres
def test_both_sides_of_a_deadlock_commit(pg_db, caplog):
    db = pg_db
    one, two = f.workspace(db, "one"), f.workspace(db, "two")
    met = threading.Barrier(2, timeout=10)
    attempts = {"a": 0, "b": 0}

    def rename(first: int, second: int, who: str):
        def op(s):
            attempts[who] += 1
            s.execute(update(Workspace).where(Workspace.id == first).values(name=f"{who}-first"))
            if attempts[who] == 1:
                met.wait()  # both hold their first row: each now waits for the other's
            s.execute(update(Workspace).where(Workspace.id == second).values(name=f"{who}-second"))
            return who

        op.__name__ = f"rename_{who}"
        return op

    results, errors = [], []

    def run(first, second, who):
        try:
            results.append(db.run(rename(first, second, who)))
        except Exception as exc:  # what the test is about: nothing should land here
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(one, two, "a")), threading.Thread(target=run, args=(two, one, "b"))]
    with caplog.at_level("INFO", logger="store.db"):
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert sorted(results) == ["a", "b"]
    assert sorted(attempts.values()) == [1, 2]  # one side was PostgreSQL's victim and ran again
    assert any("40P01" in r.getMessage() for r in caplog.records)
    with db.session() as s:
        names = set(s.scalars(select(Workspace.name).where(Workspace.id.in_([one, two]))))
    winner = "a" if attempts["a"] == 2 else "b"  # the retried side committed last, over the other's writes
    assert names == {f"{winner}-first", f"{winner}-second"}
