"""POST /v1/leaks and `purser leak report`: other scanners revoke Purser keys the same way a Slack paste does."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from store.models import Action, ApiKey, AuditEvent
from store.types import KeyStatus
from tests import factories as f
from tests.gateway.test_authz import authz, serve, two_workspaces  # noqa: F401  (serve is a fixture)

TOKEN = {"Authorization": "Bearer new-token"}


def test_a_scanner_reports_a_line_holding_a_key_and_the_key_stops_at_once(db, serve):  # noqa: F811
    a, b, dev, key_id, secret = two_workspaces(db)
    url = serve()
    assert authz(url, secret).status_code == 200
    body = {"source": "https://ci.example/jobs/7", "candidates": [f"config.py:12: OPENAI_KEY = '{secret}'", "sk-purser-" + "Z" * 43, "AKIAIOSFODNN7EXAMPLE"]}
    answer = httpx.post(url + "/v1/leaks", json=body, headers=TOKEN)
    assert answer.status_code == 200
    assert answer.json() == {"revoked": 1, "already_revoked": 0, "unknown": 1, "other_vendors": ["AWS Access Key"]}
    assert secret not in answer.text
    refused = authz(url, secret)
    assert refused.status_code == 401 and refused.headers["X-Purser-Refusal"] == "revoked"
    again = httpx.post(url + "/v1/leaks", json=body, headers=TOKEN).json()
    assert (again["revoked"], again["already_revoked"]) == (0, 1)
    with db.session() as s:
        [leak] = s.scalars(select(AuditEvent).where(AuditEvent.action == "key.leaked")).all()
        assert leak.details["permalink"] == "https://ci.example/jobs/7" and leak.details["reported_by"] == "api"
        assert len(s.scalars(select(Action).where(Action.kind == "leak_notice")).all()) == 1


@pytest.mark.parametrize(
    "body, status",
    [({}, 400), ({"candidates": []}, 400), ({"candidates": [1]}, 400), ({"candidates": ["x"] * 501}, 413), ({"candidates": ["x" * 9000]}, 413), ({"candidates": ["x"], "source": 7}, 400)],
)
def test_bad_reports_are_refused_in_plain_words(db, serve, body, status):  # noqa: F811
    url = serve()
    answer = httpx.post(url + "/v1/leaks", json=body, headers=TOKEN)
    assert answer.status_code == status and answer.json()["error"]["message"]


def test_a_report_without_the_ingest_token_is_refused(db, serve):  # noqa: F811
    a, b, dev, key_id, secret = two_workspaces(db)
    url = serve()
    assert httpx.post(url + "/v1/leaks", json={"candidates": [secret]}).status_code == 401
    assert authz(url, secret).status_code == 200


def test_the_cli_reads_candidates_from_standard_input(sqlite_db, monkeypatch, tmp_path):
    from purser.cli import app

    db = sqlite_db
    ws = f.workspace(db, "cli", "development")
    dev = f.member(db, ws)
    key_id, secret = f.key(db, ws, dev, "bot")
    monkeypatch.setenv("DATABASE_URL", str(db.engine.url.render_as_string(hide_password=False)))
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(app, ["leak", "report", "--source", "https://ci.example/jobs/8"], input=f"nothing here\nleaked: {secret}\n")
    assert result.exit_code == 0, result.output
    assert "Revoked 1 key(s)" in result.output and secret not in result.output
    with db.session() as s:
        assert s.get(ApiKey, key_id).status is KeyStatus.REVOKED
    assert "Nothing that looks like a key" in CliRunner().invoke(app, ["leak", "report"], input="just text\n").output
