"""`purser openrouter import`: adopting an OpenRouter organisation, against the fake OpenRouter over HTTP.

The CLI runs as an operator types it, with OPENROUTER_MANAGEMENT_KEY and OPENROUTER_API_URL
naming the fake, no Redis (so the command carries out the rebalances it emitted before it
exits), and a SQLite store it migrated itself (tests/test_cli.py's fixtures).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from purser.settings import get_settings
from store import budgets
from store.models import Action, ApiKey, AuditEvent, Base, Member, UsageEvent, Workspace
from store.types import Environment, KeyStatus, Period, Role
from tests import factories as f
from tests.fakes.openrouter import DEFAULT_WORKSPACE
from tests import test_cli
from tests.test_cli import fails, migrated, ok, workspace_id  # noqa: F401 (migrated: the fixture cli_db stands on)
from workers.providers.openrouter import OpenRouterProvider

OWNER = "U0OWNER"
cli_db = test_cli.cli  # the store the CLI runs on, as tests/test_cli.py makes it


@pytest.fixture
def org(openrouter, monkeypatch):
    """The fake organisation, named by the settings as an operator's environment names the real one."""
    monkeypatch.setenv("OPENROUTER_MANAGEMENT_KEY", openrouter.management_key)
    monkeypatch.setenv("OPENROUTER_API_URL", openrouter.url + "/api/v1")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    get_settings.cache_clear()
    yield openrouter
    get_settings.cache_clear()


def rows(db) -> dict[str, int]:
    with db.session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def writes(fake, since: int = 0) -> list[tuple[str, str]]:
    return [(c.method, c.path) for c in fake.calls[since:] if c.method != "GET"]


def audit_actions(db, slug: str) -> list[str]:
    with db.session() as s:
        ws = s.scalars(select(Workspace).where(Workspace.slug == slug)).one()
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.workspace_id == ws.id).order_by(AuditEvent.seq)))


def sync_usage(db) -> None:
    """The clock's usage sync, once, on a runtime like the worker's."""
    from purser import wiring
    from workers import maintenance
    from workers.runtime import configure

    configure(wiring.runtime(get_settings(), db, slack_client=False))
    try:
        maintenance.sync_usage.fn()
    finally:
        configure(None)


def test_the_dry_run_lists_what_it_would_adopt_and_changes_nothing(cli_db, org):
    search = org.add_workspace("search")
    org.add_key("prod-bot", usage=3.0, limit=5.0, limit_reset="monthly", workspace_id=search)
    org.add_key("Nightly job #2", usage=1.5, workspace_id=search)
    org.add_guardrail("only-openai", workspace_id=search, allowed_models=["openai/gpt-4o"])
    ok("workspace", "create", "search")
    before, calls = rows(cli_db), len(org.calls)

    out = ok("openrouter", "import", "--dry-run")

    assert "OpenRouter workspace `default` → a new Purser workspace `default` (development), linked to it" in out
    assert "OpenRouter workspace `search` → Purser workspace `search` (the same slug), linked to it" in out
    assert "2 key(s) adopted, owned by (the owner, named with --owner)" in out
    assert "`prod-bot` sk-or-v1-" in out and "usage $3.00; limit $5.00 monthly" in out
    assert "`Nightly job #2` (as `Nightly-job-2`)" in out and "usage $1.50" in out
    assert "guardrail `only-openai`: not adopted: assigned to some keys only" in out
    assert "OpenRouter keeps no workspace budgets for this organisation" in out
    assert "Before importing: 2 key(s) of the OpenRouter workspace `search` need an owner in Purser. Name the member who will own them: --owner U…" in out
    assert "Dry run: nothing was changed" in out
    # Nothing anywhere: no row, no audit event, and only GETs at OpenRouter.
    assert rows(cli_db) == before
    assert org.calls[calls:] and writes(org, calls) == []
    assert {c.path for c in org.calls[calls:]} >= {"/api/v1/workspaces", "/api/v1/keys", "/api/v1/guardrails", f"/api/v1/workspaces/{search}/budgets"}


def test_an_import_links_by_slug_creates_the_rest_and_adopts_the_keys_without_their_past_spend(cli_db, org):
    search, chat = org.add_workspace("search"), org.add_workspace("chat", "Chat team")
    bot = org.add_key("prod-bot", usage=3.0, limit=5.0, limit_reset="monthly", workspace_id=search)
    old = org.add_key("old", usage=2.0, limit=4.0, disabled=True, workspace_id=chat)  # a limit with no reset: left to the lease
    ok("workspace", "create", "search", "--env", "production")
    ok("member", "add", "search", "--slack", OWNER, "--role", "developer")

    out = ok("openrouter", "import", "--owner", OWNER, "--env", "staging")

    assert f"{OWNER} becomes its first Admin, to own its keys" in out  # of chat, which the import creates
    assert "its limit of $4.00 (no reset) is dropped: the quota lease governs it; disabled" in out
    assert "Imported: 3 workspace(s) adopted or updated, 2 key(s) adopted." in out and "is now its quota lease" in out
    with cli_db.session() as s:
        spaces = {w.slug: w for w in s.scalars(select(Workspace))}
        assert {slug: (w.provider, w.provider_slug, w.provider_ref, w.environment) for slug, w in spaces.items()} == {
            "search": ("openrouter", "search", search, Environment.PRODUCTION),  # linked, kept as it was
            "chat": ("openrouter", "chat", chat, Environment.STAGING),
            "default": ("openrouter", "default", DEFAULT_WORKSPACE, Environment.STAGING),
        }
        assert spaces["chat"].name == "Chat team" and spaces["search"].provider_budgets == "unavailable"
        keys = {k.provider_ref: k for k in s.scalars(select(ApiKey))}
        owners = {m.id: (m.workspace_id, m.slack_user_id, m.role) for m in s.scalars(select(Member))}
        usage_events = s.scalar(select(func.count()).select_from(UsageEvent))
    adopted, retired = keys[bot], keys[old]
    assert (adopted.name, adopted.prefix, adopted.provider, adopted.status) == ("prod-bot", org.keys[bot]["label"], "openrouter", KeyStatus.ACTIVE)
    assert (adopted.synced_usage_micros, adopted.limit_micros, adopted.limit_period) == (3_000_000, 5_000_000, Period.MONTHLY)
    assert owners[adopted.member_id] == (spaces["search"].id, OWNER, Role.DEVELOPER)
    assert owners[retired.member_id] == (spaces["chat"].id, OWNER, Role.ADMIN)
    assert (retired.status, retired.limit_micros, retired.synced_usage_micros) == (KeyStatus.DISABLED, None, 2_000_000)
    # No secret is known, and no secret's sha256 can name the key: it is not 64 hex digits.
    assert len(adopted.secret_hash) == 64 and not all(c in "0123456789abcdef" for c in adopted.secret_hash)
    assert usage_events == 0  # the past spend is not new spend
    assert audit_actions(cli_db, "search")[-1] == "openrouter.import"
    assert audit_actions(cli_db, "chat") == ["workspace.create", "member.add", "openrouter.import"]
    # The rebalance ran before the command returned: the key's own limit there is its usage and its lease.
    assert (org.keys[bot]["limit"], org.keys[bot]["limit_reset"]) == (8.0, None)
    assert org.keys[old]["limit"] == 2.0  # a disabled key leases nothing

    org.add_usage(bot, 1.25)  # spent at OpenRouter after the import
    sync_usage(cli_db)
    with cli_db.session() as s:
        assert list(s.execute(select(UsageEvent.key_id, UsageEvent.amount_micros))) == [(adopted.id, 1_250_000)]


def test_workspace_budgets_become_caps_where_the_organisation_has_them(cli_db, org):
    org.enterprise = True
    search, chat = org.add_workspace("search"), org.add_workspace("chat")
    org.put_budget(search, "daily", {"limit_usd": 10.0})
    org.put_budget(search, "monthly", {"limit_usd": 100.0})
    org.put_budget(chat, "weekly", {"limit_usd": 80.0})
    ok("workspace", "create", "chat")
    cli_db.run(budgets.set_workspace_cap, f.OPERATOR, workspace_id(cli_db, "chat"), 50_000_000, "monthly")

    out = ok("openrouter", "import", "--dry-run")
    assert "cap: $100.00 (monthly), from OpenRouter's workspace budget" in out
    assert "OpenRouter's daily budget of $10.00 is not adopted: a Purser workspace has one cap" in out
    assert "Purser's cap of $50.00 (monthly) is kept; OpenRouter's budgets (weekly $80.00) differ, and Purser's is the one that counts: it becomes OpenRouter's budget" in out
    ok("openrouter", "import")

    with cli_db.session() as s:
        caps = {w.slug: (w.cap_micros, w.cap_period, w.provider_budgets) for w in s.scalars(select(Workspace))}
    assert caps["search"] == (100_000_000, Period.MONTHLY, "mirrored")
    assert caps["chat"] == (50_000_000, Period.MONTHLY, "mirrored")
    assert caps["default"] == (None, Period.MONTHLY, "mirrored")
    assert "cap.set" in audit_actions(cli_db, "search")
    # OpenRouter's budgets follow Purser's one cap.
    assert {i: b["limit_usd"] for i, b in org.budgets[search].items()} == {"monthly": 100.0}
    assert {i: b["limit_usd"] for i, b in org.budgets[chat].items()} == {"monthly": 50.0}


def test_an_organisation_without_workspace_budgets_is_said_so_and_gets_no_cap(cli_db, org):
    org.add_workspace("search")
    out = ok("openrouter", "import")
    assert "OpenRouter keeps no workspace budgets for this organisation (OpenRouter refused the request (403: Workspace budgets are available on the Enterprise plan).)" in out
    assert "the quota leases alone hold Purser's cap" in out
    with cli_db.session() as s:
        assert {w.slug: (w.cap_micros, w.provider_budgets) for w in s.scalars(select(Workspace))} == {"default": (None, "unavailable"), "search": (None, "unavailable")}
    assert not [call for call in writes(org) if "/budgets" in call[1]]


def test_a_guardrail_over_every_adopted_key_becomes_the_model_policy(cli_db, org):
    search = org.add_workspace("search")
    a = org.add_key("a", workspace_id=search)
    b = org.add_key("b", workspace_id=search)
    org.add_guardrail("company-models", a, b, workspace_id=search, allowed_models=["openai/gpt-4o", "anthropic/*"], enforce_zdr=True)
    org.add_guardrail("budgeted", workspace_id=search, allowed_providers=["openai"], limit_usd=5.0)
    org.add_guardrail("purser-search-research", workspace_id=search, allowed_models=["openai/gpt-4o"])  # a project's, made by Purser

    out = ok("openrouter", "import", "--owner", OWNER)

    assert "model policy from guardrail `company-models`: models openai/gpt-4o, anthropic/*; zero data retention" in out
    assert "guardrail `budgeted`: not adopted: assigned to some keys only" in out
    assert "purser-search-research" not in out  # Purser's own
    with cli_db.session() as s:
        policy = s.scalars(select(Workspace.model_policy).where(Workspace.slug == "search")).one()
    assert policy == {"zdr": True, "models": ["openai/gpt-4o", "anthropic/*"]}
    assert "policy.adopt" in audit_actions(cli_db, "search")
    # Purser's guardrail carries it now: both keys hold it (a key holds one guardrail).
    ours = [g for g in org.guardrails.values() if g["name"] == "purser-search" and g["workspace_id"] == search and g["enforce_zdr"]]
    assert len(ours) == 1 and {org.keys[h]["_guardrail"]["guardrail_id"] for h in (a, b)} == {ours[0]["id"]}


def test_a_second_import_adopts_nothing(cli_db, org):
    search = org.add_workspace("search")
    org.add_key("bot", usage=1.0, workspace_id=search)
    ok("openrouter", "import", "--owner", OWNER)
    before, calls = rows(cli_db), len(org.calls)

    out = ok("openrouter", "import", "--owner", OWNER)

    assert "Nothing to adopt" in out and "already linked to it" in out
    assert rows(cli_db) == before and writes(org, calls) == []


def test_no_owner_or_one_who_cannot_hold_keys_is_refused_and_nothing_changes(cli_db, org):
    search = org.add_workspace("search")
    org.add_key("bot", workspace_id=search)
    ok("workspace", "create", "search")
    ok("member", "add", "search", "--slack", "U0VIEWER", "--role", "viewer")
    before, calls = rows(cli_db), len(org.calls)

    said = fails(1, "openrouter", "import")
    assert "Nothing was imported. 1 key(s) of the OpenRouter workspace `search` need an owner in Purser. Name the member who will own them: --owner U…" in said
    said = fails(1, "openrouter", "import", "--owner", "U0NOBODY")
    assert "U0NOBODY is not a member of `search`, so cannot own its 1 adopted key(s)." in said
    assert "purser member add search --slack U0NOBODY --role developer" in said
    said = fails(1, "openrouter", "import", "--owner", "U0VIEWER")
    assert "U0VIEWER is a Viewer of `search`, a role without API keys" in said
    assert "not a Slack user id" in fails(1, "openrouter", "import", "--owner", "bob")

    assert rows(cli_db) == before and writes(org, calls) == []
    with cli_db.session() as s:
        assert s.scalar(select(func.count()).select_from(Action)) == 0


def test_without_a_management_key_the_import_says_which_setting(cli_db, org, monkeypatch):
    monkeypatch.delenv("OPENROUTER_MANAGEMENT_KEY")
    get_settings.cache_clear()
    assert "OPENROUTER_MANAGEMENT_KEY is not set" in fails(2, "openrouter", "import", "--dry-run")


def test_the_provider_lists_every_workspace_page_by_page(org):
    made = {org.add_workspace(f"team-{i}") for i in range(120)}
    provider = OpenRouterProvider(org.management_key, org.url + "/api/v1")
    try:
        listed = provider.list_workspaces()
    finally:
        provider.close()
    assert made <= {w["id"] for w in listed} and len(listed) == 121  # and the default workspace
    assert [c.args.get("limit") for c in org.calls_to("GET", "/api/v1/workspaces")] == ["100", "100"]


def test_the_store_adopts_in_one_transaction_on_both_stores(db):
    """store.adoption without the CLI, on SQLite and PostgreSQL: the rows it makes, its audit, its one rebalance."""
    from store.adoption import adopt
    from store.adoption_plan import OrgKey, OrgWorkspace, plan_import

    ws = f.workspace(db, "search", "production")
    f.key(db, ws, f.member(db, ws, Role.ADMIN, slack_user_id=OWNER), "bot")
    keys = tuple(OrgKey(f"h{i}", "bot", f"sk-or-v1-{i}", 1_000_000 * i, None, None, False) for i in range(1, 3))
    org = [OrgWorkspace("0df9e665-d932-5740-b2c7-b52af166bc11", "search", "Search", None, "403", keys)]

    plan = db.run(plan_import, org, team_id="local", owner=OWNER, environment="development")
    assert [ka.name for ka in plan.workspaces[0].keys] == ["bot-2", "bot-3"]  # the owner has a `bot` already
    done = db.run(adopt, f.OPERATOR, org, team_id="local", owner=OWNER, environment="development")
    assert not done.problems and done.workspaces[0].how == "link"
    with db.session() as s:
        made = sorted((k.name, k.provider_ref, k.synced_usage_micros) for k in s.scalars(select(ApiKey).where(ApiKey.provider == "openrouter")))
        rebalance = s.scalars(select(Action.workspace_id).where(Action.kind == "rebalance_leases")).all()
        imported = s.scalars(select(AuditEvent).where(AuditEvent.action == "openrouter.import")).one()
    assert made == [("bot-2", "h1", 1_000_000), ("bot-3", "h2", 2_000_000)]
    assert rebalance == [ws] and imported.actor == f.OPERATOR.label and imported.details["openrouter_workspace"] == org[0].id
    assert db.run(plan_import, org, team_id="local", owner=OWNER, environment="development").nothing
