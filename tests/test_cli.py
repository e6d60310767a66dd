"""`purser`, the operator's command line, against a SQLite file it migrated itself."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from purser.cli import app
from purser.settings import get_settings
from store.db import Database
from store.members import list_members
from store.models import AuditEvent
from store.money import parse_money
from store.types import Role
from tests import factories as f

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def migrated(tmp_path_factory, request):
    """One `purser db upgrade` per module; each test gets a copy of the migrated file."""
    path = tmp_path_factory.mktemp("cli") / "template.db"
    mp = pytest.MonkeyPatch()
    mp.setenv("DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    result = _invoke("db", "upgrade")
    mp.undo()
    get_settings.cache_clear()
    return path, result


@pytest.fixture
def cli(migrated, tmp_path, monkeypatch):
    template, _ = migrated
    path = tmp_path / "purser.db"
    shutil.copy(template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    db = Database(url)
    yield db
    db.dispose()
    get_settings.cache_clear()


def ok(*args: str) -> str:
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(code: int, *args: str) -> str:
    result = _invoke(*args)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.stderr


def workspace_id(db: Database, slug: str) -> int:
    from store.workspaces import find_workspace

    return db.run(lambda s: find_workspace(s, slug).id)


def test_db_upgrade_migrates_the_file_to_head(migrated):
    _, result = migrated
    assert result.exit_code == 0, result.output
    assert "Store is at head (sqlite:///" in result.stdout


def test_db_upgrade_again_is_harmless(cli):
    assert "Store is at head" in ok("db", "upgrade")


def test_workspace_create_and_list(cli):
    assert "No workspaces yet" in ok("workspace", "list")
    out = ok("workspace", "create", "prod", "--env", "production", "--name", "Production")
    assert "Created workspace prod (production, key policy approval) in team local." in out
    assert "purser member add prod" in out
    ok("workspace", "create", "sandbox", "--team", "T0TEAM")
    listing = ok("workspace", "list").splitlines()
    assert listing[0].split() == ["workspace", "team", "environment", "status", "policy"]
    assert [line.split() for line in listing[1:]] == [
        ["prod", "local", "production", "active", "approval"],
        ["sandbox", "T0TEAM", "development", "active", "auto"],
    ]
    assert len(ok("workspace", "list", "--team", "T0TEAM").splitlines()) == 2


def test_workspace_create_refuses_bad_input_clearly(cli):
    assert "lowercase letters, digits and dashes" in fails(1, "workspace", "create", "Bad Slug")
    assert "production, staging or development" in fails(1, "workspace", "create", "x", "--env", "live")
    assert "not a key policy" in fails(1, "workspace", "create", "x", "--policy", "sometimes")
    ok("workspace", "create", "x")
    assert "already exists" in fails(1, "workspace", "create", "x")


def test_member_add_gives_a_new_workspace_its_first_admin(cli):
    ok("workspace", "create", "acme")
    assert "U0FIRST is now an Admin of acme." in ok("member", "add", "acme", "--slack", "U0FIRST", "--role", "admin")
    assert "pay@example.com is now a Billing Manager of acme." in ok("member", "add", "acme", "--email", "Pay@Example.com", "-r", "billing")
    ws = workspace_id(cli, "acme")
    with cli.session() as s:
        members = list_members(s, f.OPERATOR, ws)
    assert [(m.label, m.role) for m in members] == [("U0FIRST", Role.ADMIN), ("pay@example.com", Role.BILLING)]


def test_member_add_refuses_bad_input_clearly(cli):
    ok("workspace", "create", "acme")
    assert "not a role" in fails(1, "member", "add", "acme", "--slack", "U0FIRST", "--role", "owner")
    assert "give --slack" in fails(2, "member", "add", "acme")
    assert "not a Slack user id" in fails(1, "member", "add", "acme", "--slack", "bob")
    assert "no workspace called `nope`" in fails(1, "member", "add", "nope", "--slack", "U0FIRST")
    ok("member", "add", "acme", "--slack", "U0FIRST")
    assert "already a Developer" in fails(1, "member", "add", "acme", "--slack", "U0FIRST")


@pytest.fixture
def spending(cli):
    """Workspace `acme` with an admin's key `bot` on project `search` ($10 budget)."""
    ok("workspace", "create", "acme")
    ok("member", "add", "acme", "--slack", "U0ADMIN", "--role", "admin")
    ws = workspace_id(cli, "acme")
    f.project(cli, ws, "search", budget=parse_money("$10"))
    f.key(cli, ws, f.member(cli, ws, Role.DEVELOPER), "bot", project="search")
    return ws


def test_usage_record_prints_the_amount_thresholds_and_pauses(cli, spending):
    assert ok("usage", "record", "acme", "--key", "bot", "--amount", "$4.50", "--model", "gpt-x").strip() == "Recorded $4.50 on key bot."
    out = ok("usage", "record", "acme", "-k", "bot", "-a", "1.5", "--external-id", "inv-7")
    assert "threshold: project `search` has used 50% ($6.00 of $10.00)" in out
    out = ok("usage", "record", "acme", "-k", "bot", "-a", "$4")
    assert "threshold: project `search` has used 100% ($10.00 of $10.00)" in out
    assert "paused: project:search" in out
    assert "Already recorded: inv-7 (nothing added)." in ok("usage", "record", "acme", "-k", "bot", "-a", "1.5", "--external-id", "inv-7")


def test_usage_record_refuses_bad_input_clearly(cli, spending):
    assert "not an amount of money" in fails(2, "usage", "record", "acme", "-k", "bot", "-a", "lots")
    assert "is negative" in fails(2, "usage", "record", "acme", "-k", "bot", "-a", "-$5")
    assert "no workspace called `nowhere`" in fails(1, "usage", "record", "nowhere", "-k", "bot", "-a", "$1")
    assert "No live key matches" in fails(1, "usage", "record", "acme", "-k", "nobody", "-a", "$1")
    assert "refused: occurred_at is in the future" in fails(1, "usage", "record", "acme", "-k", "bot", "-a", "$1", "--at", "2999-01-01T00:00:00")


def test_audit_verify_passes_then_names_the_edited_event(cli, spending):
    out = ok("audit", "verify")
    assert "acme: The audit chain verifies" in out
    with cli.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.workspace_id == spending, AuditEvent.seq == 2).values(details={"role": "viewer"}))
        s.commit()
    result = _invoke("audit", "verify", "acme")
    assert result.exit_code == 1
    assert "acme: The audit chain is broken at event #2" in result.stdout
    assert "no workspace called nope" in fails(1, "audit", "verify", "nope")


def test_audit_export_writes_jsonl_and_csv_with_hashes(cli, spending, tmp_path):
    lines = [json.loads(line) for line in ok("audit", "export", "acme").splitlines()]
    assert [l["seq"] for l in lines] == list(range(1, len(lines) + 1))
    assert lines[0]["action"] == "workspace.create" and len(lines[0]["hash"]) == 64
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(lines, lines[1:]))
    rows = list(csv.DictReader(io.StringIO(ok("audit", "export", "acme", "--format", "csv"))))
    assert [(int(r["seq"]), r["hash"]) for r in rows] == [(l["seq"], l["hash"]) for l in lines]
    target = tmp_path / "audit.csv"
    result = _invoke("audit", "export", "acme", "-f", "csv", "-o", str(target))
    assert result.exit_code == 0 and f"Wrote {len(rows) + 1} line(s)" in result.stderr
    assert target.read_text().splitlines()[0] == "seq,at,actor,action,resource,outcome,details,prev_hash,hash"
    assert "--format must be csv or jsonl" in fails(2, "audit", "export", "acme", "--format", "xml")
    assert "no workspace called `nope`" in fails(1, "audit", "export", "nope")


def test_secret_key_prints_a_usable_fernet_key(cli):
    from store.secrets import Cipher

    key = ok("secret-key").strip()
    assert Cipher(key).decrypt(Cipher(key).encrypt("x")) == "x"


def test_the_team_defaults_to_slack_team_id_as_the_web_process_sees_it(cli, monkeypatch):
    monkeypatch.setenv("SLACK_TEAM_ID", "T0ACME")
    get_settings.cache_clear()
    assert "in team T0ACME" in ok("workspace", "create", "prod", "--env", "production")
    ok("member", "add", "prod", "--slack", "U0123ABCD", "--role", "admin")  # found in the same team, no --team needed
    from store.workspaces import find_workspace

    assert cli.run(lambda s: find_workspace(s, "prod", "T0ACME").team_id) == "T0ACME"
    assert "in team local" in ok("workspace", "create", "sandbox", "--env", "development", "--team", "local")  # --team still wins


def test_a_crossing_recorded_on_the_command_line_is_announced_before_it_returns(cli, spending, slack_server, slack_api, monkeypatch):
    """No queue is shared with the workers (no REDIS_URL): the command carries out what it committed itself,
    rather than leave the alert for the clock's sweep half a minute later."""
    from store import workspaces
    from tests.fixtures_workers import BOT_TOKEN

    _, slack_url = slack_server
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", slack_url + "/api/")
    get_settings.cache_clear()
    cli.run(workspaces.set_channels, f.OPERATOR, spending, alerts="C0CLIALERTS")
    out = ok("usage", "record", "acme", "-k", "bot", "-a", "$8.50")
    assert "threshold" in out
    [alert] = slack_api.channel_messages("C0CLIALERTS")
    assert "80%" in alert.text and "search" in alert.text
    out = ok("usage", "record", "acme", "-k", "bot", "-a", "$2")
    assert "paused" in out
    assert any("paused" in m.text.lower() for m in slack_api.channel_messages("C0CLIALERTS")[1:])


def test_workspace_delete_asks_for_the_name_and_revokes_the_keys(cli, spending):
    from store.models import ApiKey, AuditEvent
    from store.types import KeyStatus

    asked = runner.invoke(app, ["workspace", "delete", "acme"], input="acmee\n")
    assert asked.exit_code == 1 and "revokes its 1 live key(s)" in asked.output and "is not the workspace's name" in asked.output
    assert "acme" in ok("workspace", "list")
    out = ok("workspace", "delete", "acme", "--confirm", "acme")
    assert "Deleted acme: 1 key(s) revoked" in out
    assert "No workspaces yet" in ok("workspace", "list")
    with cli.session() as s:
        assert {k.status for k in s.scalars(select(ApiKey))} == {KeyStatus.REVOKED}
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "workspace.delete")).one()


def test_an_operator_puts_a_workspace_on_openrouter_at_creation_or_later(cli):
    from store.db import Database
    from store.models import Action, Workspace

    out = ok("workspace", "create", "search", "--provider", "openrouter", "--openrouter-workspace", "search-team")
    assert "Linked to OpenRouter workspace search-team" in out
    ok("workspace", "create", "chat")
    assert "Linked chat to OpenRouter workspace chat" in ok("workspace", "link", "chat")
    bad = _invoke("workspace", "create", "x", "--provider", "openruoter")
    assert bad.exit_code != 0 and "not a key provider" in bad.output
    refused = _invoke("workspace", "link", "chat", "--openrouter-workspace", "Not A Slug")
    assert refused.exit_code != 0 and "not an OpenRouter workspace slug" in refused.output
    db = Database(get_settings().database_url)
    with db.session() as s:
        linked = {w.slug: (w.provider, w.provider_slug) for w in s.scalars(select(Workspace))}
        links = sorted(a.payload["slug"] for a in s.scalars(select(Action).where(Action.kind == "link_workspace")))
    assert linked == {"search": ("openrouter", "search-team"), "chat": ("openrouter", "chat")}
    assert links == ["chat", "search-team"]  # the workers adopt or create them (no management key here)


def test_statement_prints_a_month_and_with_post_closes_and_sends_it(cli, clock, slack_server, slack_api, monkeypatch, tmp_path):
    from datetime import datetime, timezone

    from tests.fixtures_workers import BOT_TOKEN

    clock.move_to(datetime(2026, 11, 5, 2, tzinfo=timezone.utc))
    ok("workspace", "create", "acme")
    ok("member", "add", "acme", "--slack", "U0ADMIN", "--role", "admin")
    ws = workspace_id(cli, "acme")
    f.project(cli, ws, "search", budget=parse_money("$10"))
    f.key(cli, ws, f.member(cli, ws, Role.DEVELOPER), "bot", project="search")
    ok("usage", "record", "acme", "-k", "bot", "-a", "$1.25", "--model", "gpt-x", "--at", "2026-11-05T01:00:00")
    clock.move_to(datetime(2026, 11, 20, tzinfo=timezone.utc), tick=False)
    out = ok("statement", "acme", "--month", "2026-11")
    assert "Statement for acme, November 2026 — PREVIEW, NOT CLOSED" in out and "$1.25 (1 calls)" in out and "search" in out and "gpt-x" in out
    assert "Budget search $10.00 monthly" in out and "The audit chain verifies" in out
    assert "--month, like --month 2026-11" in fails(2, "statement", "acme", "--post")
    assert "not over yet" in fails(1, "statement", "acme", "--month", "2026-11", "--post")
    assert "is not a month" in fails(2, "statement", "acme", "--month", "Nov")
    clock.move_to(datetime(2026, 12, 1, 0, 0, 30, tzinfo=timezone.utc), tick=False)  # the month's last instant, recorded after midnight
    ok("usage", "record", "acme", "-k", "bot", "-a", "$0.000001", "--at", "2026-11-30T23:59:59.999000")

    _, slack_url = slack_server
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", slack_url + "/api/")
    get_settings.cache_clear()
    clock.move_to(datetime(2026, 12, 1, 6, tzinfo=timezone.utc), tick=False)
    out = ok("statement", "acme", "--month", "2026-11", "--post", "--csv", str(tmp_path / "nov.csv"))
    assert "November 2026 — closed 2026-12-01 06:00 UTC" in out and "$1.250001 (2 calls)" in out and "Posted to the workspace's Admins and Billing Managers" in out
    [text] = [m for m in slack_api.channel_messages("D0ADMIN") if not m.files]
    assert "Statement for acme, November 2026" in text.text
    rows = list(csv.DictReader(io.StringIO((tmp_path / "nov.csv").read_text())))
    assert sum(int(r["amount_micros"]) for r in rows if r["kind"] == "spend") == 1_250_001
    assert [r["amount_usd"] for r in rows if r["kind"] == "total"] == ["1.250001"]
