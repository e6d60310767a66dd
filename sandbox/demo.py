"""The demo team the sandbox starts with: five people, a production and a development workspace."""

from __future__ import annotations

from dataclasses import dataclass

from store import budgets, credits, members, workspaces
from store.db import Database
from store.permissions import Actor
from store.types import Role


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    role: Role
    email: str


PEOPLE = [
    Person("U0ADA00001", "Ada (admin)", Role.ADMIN, "ada@example.com"),
    Person("U0DEV00001", "Dev (developer)", Role.DEVELOPER, "dev@example.com"),
    Person("U0LIN00001", "Lin (developer)", Role.DEVELOPER, "lin@example.com"),
    Person("U0VIC00001", "Vic (viewer)", Role.VIEWER, "vic@example.com"),
    Person("U0BEA00001", "Bea (billing)", Role.BILLING, "bea@example.com"),
]

CHANNELS = {
    "C0GENERAL1": "general",
    "C0APPROVE1": "ai-approvals",
    "C0ALERTS01": "ai-alerts",
    "C0AUDIT001": "ai-audit",
    "C0DEVAPPR1": "dev-approvals",
    "C0DEVALRT1": "dev-alerts",
}


def seed(db: Database, team_id: str) -> bool:
    """Create the demo team once; returns False when the store already holds workspaces."""
    operator = Actor.operator("sandbox")
    if db.run(lambda s: workspaces.list_workspaces(s, team_id=team_id)):
        return False
    prod = db.run(workspaces.create_workspace, operator, slug="prod", name="Production", environment="production", team_id=team_id).id
    dev = db.run(workspaces.create_workspace, operator, slug="dev", name="Development", environment="development", team_id=team_id).id
    for ws in (prod, dev):
        for person in PEOPLE:
            db.run(members.add_member, operator, ws, role=person.role, slack_user_id=person.user_id, email=person.email, why="demo team")
    db.run(workspaces.set_channels, operator, prod, approvals="C0APPROVE1", alerts="C0ALERTS01", audit_channel="C0AUDIT001")
    db.run(workspaces.set_channels, operator, dev, approvals="C0DEVAPPR1", alerts="C0DEVALRT1", audit_channel="C0AUDIT001")
    db.run(budgets.set_workspace_cap, operator, prod, 500_000_000, "monthly")
    db.run(budgets.create_project, operator, prod, "search", budget_micros=25_000_000, period="monthly")
    db.run(budgets.create_project, operator, prod, "support", budget_micros=100_000_000, period="monthly")
    db.run(budgets.create_project, operator, dev, "playground", budget_micros=10_000_000, period="daily")
    db.run(credits.add_credit, operator, prod, 300_000_000, "demo credit")
    return True
