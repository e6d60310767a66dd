"""Project budgets inside the workspace cap; pausing and resuming by hand and by spend."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import budgets
from store.errors import Conflict, InvalidInput, LimitReached, NotFound, PermissionDenied
from store.models import Action, AuditEvent, Project, Workspace
from store.money import parse_money
from store.types import Period, ProjectStatus, Role, WorkspaceStatus
from tests import factories as f

USD = parse_money


def project(db, ws: int, slug: str) -> Project:
    with db.session() as s:
        return s.scalars(select(Project).where(Project.workspace_id == ws, Project.slug == slug)).one()


def workspace(db, ws: int) -> Workspace:
    with db.session() as s:
        return s.get(Workspace, ws)


def action_kinds(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Action.kind).order_by(Action.created_at)))


@pytest.fixture
def shop(db):
    """A development workspace with an admin, a developer and her key on project `search` ($10)."""
    ws = f.workspace(db, "shop", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=USD("$10"))
    key_id, _ = f.key(db, ws, dev, "bot", project="search")
    return ws, admin, dev, key_id


def test_project_budgets_must_fit_inside_the_cap_with_the_numbers_in_the_refusal(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    db.run(budgets.set_workspace_cap, admin, ws, USD("$1,000"))
    f.project(db, ws, "search", budget=USD("$600"))
    message = r"cap of \$1,000.00: the other projects already hold \$600.00, so `chat` can have at most \$400.00, not \$500.00"
    with pytest.raises(LimitReached, match=message):
        db.run(budgets.create_project, admin, ws, "chat", budget_micros=USD("$500"))
    db.run(budgets.create_project, admin, ws, "chat", budget_micros=USD("$400"))
    with pytest.raises(LimitReached, match=r"at most \$400.00, not \$400.01"):
        db.run(budgets.set_project_budget, admin, ws, "chat", USD("$400.01"))
    # a project's own budget does not count against itself
    db.run(budgets.set_project_budget, admin, ws, "search", USD("$550"))
    assert project(db, ws, "search").budget_micros == USD("$550")


def test_a_cap_below_the_budgets_is_refused_naming_the_projects(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search", budget=USD("$300"))
    f.project(db, ws, "chat", budget=USD("$200"))
    f.project(db, ws, "free")  # no budget: not counted
    with pytest.raises(LimitReached, match=r"add up to \$500.00, more than the cap of \$499.00.*search \$300.00, chat \$200.00"):
        db.run(budgets.set_workspace_cap, admin, ws, USD("$499"))
    assert workspace(db, ws).cap_micros is None
    db.run(budgets.set_workspace_cap, admin, ws, USD("$500"), "weekly")
    w = workspace(db, ws)
    assert (w.cap_micros, w.cap_period) == (USD("$500"), Period.WEEKLY)


def test_budget_and_cap_changes_are_audited_with_before_and_after(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search", budget=USD("$10"))
    db.run(budgets.set_project_budget, admin, ws, "search", USD("$20"), "daily")
    db.run(budgets.set_workspace_cap, admin, ws, USD("$100"))
    with db.session() as s:
        events = {e.action: e for e in s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == ws))}
    assert events["budget.set"].details == {
        "from": {"budget_micros": USD("$10"), "period": "monthly"},
        "to": {"budget_micros": USD("$20"), "period": "daily"},
    }
    assert events["cap.set"].details == {"from": {"cap_micros": None, "period": "monthly"}, "to": {"cap_micros": USD("$100"), "period": "monthly"}}
    assert {"apply_budget", "apply_cap"} <= set(action_kinds(db))


def test_projects_are_named_like_slugs_and_unique(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search")
    with pytest.raises(Conflict, match="already has a project called `search`"):
        db.run(budgets.create_project, admin, ws, "Search")
    with pytest.raises(InvalidInput, match="cannot name a project"):
        db.run(budgets.create_project, admin, ws, "my project")
    with pytest.raises(InvalidInput, match="not a period"):
        db.run(budgets.create_project, admin, ws, "chat", period="fortnightly")
    with pytest.raises(NotFound, match="no project called `nope`"):
        db.run(budgets.set_project_budget, admin, ws, "nope", USD("$1"))


def test_only_an_admin_sets_budgets_others_are_told_to_ask(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    billing = f.member(db, ws, Role.BILLING)
    f.project(db, ws, "search")
    with pytest.raises(PermissionDenied, match="ask an admin instead"):
        db.run(budgets.set_project_budget, dev, ws, "search", USD("$1"))
    with pytest.raises(PermissionDenied, match="Only an Admin"):
        db.run(budgets.set_workspace_cap, billing, ws, USD("$1"))


def test_manual_pause_needs_a_reason_and_resume_lifts_it(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search", budget=USD("$10"))
    with pytest.raises(InvalidInput, match="Say why"):
        db.run(budgets.pause_project, admin, ws, "search", "  ")
    db.run(budgets.pause_project, admin, ws, "search", "model migration")
    p = project(db, ws, "search")
    assert (p.status, p.paused_reason, p.paused_by) == (ProjectStatus.PAUSED, "model migration", "manual")
    with pytest.raises(Conflict, match="already paused: “model migration”"):
        db.run(budgets.pause_project, admin, ws, "search", "again")
    db.run(budgets.resume_project, admin, ws, "search")
    assert project(db, ws, "search").status is ProjectStatus.ACTIVE
    with pytest.raises(Conflict, match="not paused"):
        db.run(budgets.resume_project, admin, ws, "search")
    assert [k for k in action_kinds(db) if k.endswith("_project")] == ["pause_project", "resume_project"]


@pytest.mark.calendar
def test_spend_reaching_the_budget_pauses_and_resume_is_refused_while_spent(db, shop):
    ws, admin, _, key_id = shop
    f.spend(db, key_id, USD("$10"))
    p = project(db, ws, "search")
    assert (p.status, p.paused_by, p.paused_reason) == (ProjectStatus.PAUSED, "budget", "budget of $10.00 spent")
    with pytest.raises(LimitReached, match=r"spent its whole budget of \$10.00 this period"):
        db.run(budgets.resume_project, admin, ws, "search")
    assert project(db, ws, "search").status is ProjectStatus.PAUSED


@pytest.mark.calendar
def test_raising_the_budget_above_spend_resumes_at_once(db, shop):
    ws, admin, _, key_id = shop
    f.spend(db, key_id, USD("$12"))
    db.run(budgets.set_project_budget, admin, ws, "search", USD("$12"))
    assert project(db, ws, "search").status is ProjectStatus.PAUSED  # equal is still spent
    db.run(budgets.set_project_budget, admin, ws, "search", USD("$12.01"))
    assert project(db, ws, "search").status is ProjectStatus.ACTIVE
    with db.session() as s:
        resume = s.scalars(select(AuditEvent).where(AuditEvent.action == "project.resume")).one()
        assert resume.details == {"why": "budget raised above this period's spend"}


@pytest.mark.calendar
def test_removing_the_budget_resumes_a_budget_paused_project(db, shop):
    ws, admin, _, key_id = shop
    f.spend(db, key_id, USD("$10"))
    db.run(budgets.set_project_budget, admin, ws, "search", None)
    assert project(db, ws, "search").status is ProjectStatus.ACTIVE


@pytest.mark.calendar
def test_lowering_the_budget_below_spend_pauses_at_once(db, shop):
    ws, admin, _, key_id = shop
    f.spend(db, key_id, USD("$4"))
    db.run(budgets.set_project_budget, admin, ws, "search", USD("$4"))
    p = project(db, ws, "search")
    assert (p.status, p.paused_by) == (ProjectStatus.PAUSED, "budget")
    assert "pause_project" in action_kinds(db)


def test_raising_the_budget_does_not_lift_a_manual_pause(db, shop):
    ws, admin, _, _ = shop
    db.run(budgets.pause_project, admin, ws, "search", "incident")
    db.run(budgets.set_project_budget, admin, ws, "search", USD("$20"))
    assert project(db, ws, "search").paused_reason == "incident"


@pytest.mark.calendar
def test_a_paused_project_leaves_the_others_running(db, shop):
    ws, admin, dev, key_id = shop
    f.project(db, ws, "chat", budget=USD("$10"))
    other, _ = f.key(db, ws, dev, "chat-bot", project="chat")
    f.spend(db, key_id, USD("$10"))
    f.spend(db, other, USD("$1"))
    assert project(db, ws, "search").status is ProjectStatus.PAUSED
    assert project(db, ws, "chat").status is ProjectStatus.ACTIVE
    assert workspace(db, ws).status is WorkspaceStatus.ACTIVE


@pytest.mark.calendar
def test_spend_reaching_the_cap_pauses_the_workspace_and_raising_it_resumes(db, shop):
    ws, admin, _, key_id = shop
    db.run(budgets.set_workspace_cap, admin, ws, USD("$20"))
    db.run(budgets.set_project_budget, admin, ws, "search", None)
    result = f.spend(db, key_id, USD("$20"))
    assert "workspace:shop" in result.paused
    w = workspace(db, ws)
    assert (w.status, w.paused_reason) == (WorkspaceStatus.PAUSED, "cap")
    db.run(budgets.set_workspace_cap, admin, ws, USD("$25"))
    assert workspace(db, ws).status is WorkspaceStatus.ACTIVE
    db.run(budgets.set_workspace_cap, admin, ws, USD("$20"))  # lowering to the spend pauses again
    assert workspace(db, ws).status is WorkspaceStatus.PAUSED


@pytest.mark.calendar
def test_budget_overview_shows_spend_against_each_limit_paused_first(db, shop):
    ws, admin, dev, key_id = shop
    db.run(budgets.set_workspace_cap, admin, ws, USD("$100"))
    f.project(db, ws, "chat", budget=USD("$40"))
    other, _ = f.key(db, ws, dev, "chat-bot", project="chat")
    f.spend(db, key_id, USD("$10"))
    f.spend(db, other, USD("$10"))
    with db.session() as s:
        lines = budgets.budget_overview(s, admin, ws)
    assert [(l.kind, l.name, l.spent_micros, l.limit_micros, l.paused, l.share) for l in lines] == [
        ("project", "search", USD("$10"), USD("$10"), True, 100),
        ("cap", "shop", USD("$20"), USD("$100"), False, 20),
        ("project", "chat", USD("$10"), USD("$40"), False, 25),
    ]


@pytest.mark.calendar
def test_raising_the_cap_over_an_empty_credit_pool_keeps_the_workspace_paused_for_credit(db, shop):
    from store import credits

    ws, admin, _, key_id = shop
    db.run(budgets.set_workspace_cap, admin, ws, USD("$20"))
    db.run(budgets.set_project_budget, admin, ws, "search", None)
    db.run(credits.add_credit, admin, ws, USD("$20"))
    f.spend(db, key_id, USD("$20"))  # reaches the cap and empties the pool at once
    db.run(budgets.set_workspace_cap, admin, ws, USD("$50"))
    w = workspace(db, ws)
    assert (w.status, w.paused_reason) == (WorkspaceStatus.PAUSED, "credit")
    db.run(credits.add_credit, admin, ws, USD("$10"))
    assert workspace(db, ws).status is WorkspaceStatus.ACTIVE


def test_a_developer_sees_the_budgets_of_their_own_projects_only(db):
    """The workspace's spend and other projects' budgets are for Viewers, Billing Managers and Admins."""
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    viewer = f.member(db, ws, Role.VIEWER)
    f.project(db, ws, "search", budget=parse_money("$100"))
    f.project(db, ws, "secret-launch", budget=parse_money("$900"))
    f.key(db, ws, dev, "bot", project="search")
    assert [(line.kind, line.name) for line in db.run(budgets.budget_overview, dev, ws)] == [("project", "search")]
    seen = {(line.kind, line.name) for line in db.run(budgets.budget_overview, viewer, ws)}
    assert seen == {("project", "search"), ("project", "secret-launch"), ("cap", "acme")}
