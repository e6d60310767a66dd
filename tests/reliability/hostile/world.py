"""Two workspaces of one Slack team, as the hostile scenarios find them; raw requests as Slack sends them; hypothesis strategies."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from store import decisions, keys
from store.models import (
    ApiKey,
    AuditEvent,
    CreditEntry,
    Invitation,
    Member,
    Project,
    Request,
    Workspace,
)
from store.permissions import Actor
from store.types import Role
from tests.reliability.hostile.checks import TEAM, settle

ACTIONS = ("request_approve", "request_deny", "key_reveal", "invitation_accept", "invitation_decline")
FORMS = ("key_new", "deny_reason")
#: hypothesis examples per fuzz test: FAST in `make test` (the same examples every run), SLOW in `make soak` (new ones every run)
FAST, SLOW = 60, 1500
MARKS = ("*PWN*", "_PWN_", "~PWN~")
OUTSIDER = "U0OUTSIDER"


# -- the world: two workspaces of one Slack team --------------------------------------------


@dataclass
class World:
    alpha: int
    zulu: int
    admin: str
    dev: str
    viewer: str
    billing: str
    z_admin: str
    z_dev: str
    a_request: int  # pending key request in alpha, by dev
    z_request: int  # pending key request in zulu, by z_dev
    z_key: int  # z_dev's key in zulu, secret not yet revealed
    z_invitation: int  # pending invitation into zulu, for someone else
    a_invitation: int  # pending invitation into alpha, for someone else
    since: int  # calls the fake Slack had received when the world was ready

    @property
    def users(self) -> list[str]:
        return [self.admin, self.dev, self.viewer, self.billing, self.z_admin, OUTSIDER]

    @property
    def ids(self) -> list[str]:
        return [str(i) for i in (self.a_request, self.z_request, self.z_key, self.z_invitation, self.a_invitation)]

    def zulu_words(self, db) -> list[str]:
        """What a refusal must not say about zulu: its slug, name, projects, members."""
        with db.session() as s:
            ws = s.get(Workspace, self.zulu)
            projects = list(s.scalars(select(Project.slug).where(Project.workspace_id == self.zulu)))
            people = [m for m in s.scalars(select(Member.slack_user_id).where(Member.workspace_id == self.zulu)) if m]
        return [ws.slug, ws.name or ws.slug, "zulu", *projects, *people]


def key_for(db, workers, ws: int, owner, name: str, project: str | None = None) -> int:
    req = db.run(keys.request_key, owner, ws, name=name, project=project)
    if req.state.value == "pending":
        admin = db.run(lambda s: s.scalars(select(Member).where(Member.workspace_id == ws, Member.role == Role.ADMIN)).first().slack_user_id)
        db.run(decisions.decide_request, Actor.slack(admin), req.id, approve=True)
    settle(workers)
    with db.session() as s:
        return s.scalars(select(ApiKey.id).where(ApiKey.request_id == req.id)).one()


def snapshot(db, workspace_id: int) -> dict:
    """Everything a refused action must leave as it was (its own denial excepted)."""
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
        count = lambda model, *where: s.scalar(select(func.count()).select_from(model).where(model.workspace_id == workspace_id, *where))  # noqa: E731
        return {
            "workspace": (ws.status, ws.key_policy, ws.cap_micros, ws.approvals_channel, ws.alerts_channel, ws.audit_channel, list(ws.ip_allowlist or [])),
            "members": sorted((m.slack_user_id, m.role.value, m.status.value) for m in s.scalars(select(Member).where(Member.workspace_id == workspace_id))),
            "projects": sorted((p.slug, p.budget_micros, p.status.value) for p in s.scalars(select(Project).where(Project.workspace_id == workspace_id))),
            "requests": sorted((r.id, r.state.value) for r in s.scalars(select(Request).where(Request.workspace_id == workspace_id))),
            "keys": sorted((k.id, k.status.value) for k in s.scalars(select(ApiKey).where(ApiKey.workspace_id == workspace_id))),
            "invitations": sorted((i.id, i.status.value) for i in s.scalars(select(Invitation).where(Invitation.workspace_id == workspace_id))),
            "credit": count(CreditEntry),
            "audit_ok": count(AuditEvent, AuditEvent.outcome == "ok"),
        }


# -- raw requests as Slack sends them -----------------------------------------------------


def block_actions(user: str, action_id: str, value, *, where: str = "channel", team: str = TEAM) -> dict:
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "purser"},
        "user": {"id": user, "team_id": team},
        "api_app_id": "A0PURSER",
        "trigger_id": f"{time.time_ns()}.trigger",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": str(time.time())}],
    }
    if where == "channel":
        payload |= {"channel": {"id": "C0ALPHAAPPR"}, "container": {"type": "message", "channel_id": "C0ALPHAAPPR", "message_ts": "1.000001"}, "message": {"ts": "1.000001"}}
    elif where == "home":
        payload |= {"view": {"id": "V0HOME", "type": "home"}, "container": {"type": "view", "view_id": "V0HOME"}}
    return payload


def view_submission(user: str, callback_id: str, private_metadata, values, *, team: str = TEAM) -> dict:
    return {
        "type": "view_submission",
        "team": {"id": team},
        "user": {"id": user, "team_id": team},
        "api_app_id": "A0PURSER",
        "view": {"id": "V0FORM", "type": "modal", "callback_id": callback_id, "private_metadata": private_metadata, "state": {"values": values}},
    }


def form(**values: str) -> dict:
    return {block: {"value": {"type": "plain_text_input", "value": value}} for block, value in values.items()}


# -- hypothesis strategies ----------------------------------------------------------------

HOSTILE = [
    "<!channel>", "<!here>", "<!everyone>", "<@U123>", "<@U123|ada>", "<https://evil|click>", "<https://evil>", "<#C123|general>", "<mailto:a@b.co|a@b.co>",
    "*PWN*", "_PWN_", "~PWN~", "`TICK`", "```", "&amp;", "&lt;", ">", "\x00", "\u202e", "\u200b", "💥", "“", "”", "\"", "'", "\\", "\n", "\t",
    "--", "-w", "--workspace", "--limit", "-l", "--project", "-p", "--reason", "--role", "--days", "--env", "--period", "--lifetime", "--all", "--mine", "--expires", "--name", "--note",
    "$1e999", "$-5", "NaN", "inf", "1,2,3", "9" * 40, "0", "-1", "#1", "1d", "99999w", "$0.0000001", "$12.50", "50k",
    "zulu-secret", "alpha", "search", "moonshot", "U0ZINVITEE", "x@example.com", "*PWN*@example.com", "admin", "developer", "viewer", "billing", "wizard",
    "new", "list", "rotate", "revoke", "disable", "enable", "help", "show", "set", "request", "cap", "pause", "resume", "balance", "add",
    "recent", "verify", "export", "csv", "jsonl", "create", "use", "policy", "approval", "auto", "channels", "approvals=<!channel>", "alerts=C0X",
    "allowlist", "10.0.0.0/8", "::/0", "templates", "role", "remove", "leave", "none", "off",
]
chars = st.characters(blacklist_categories=("Cs",))
word = st.one_of(st.sampled_from(HOSTILE), st.text(chars, max_size=24))
command_text = st.one_of(
    st.lists(word, max_size=9).map(" ".join),
    st.lists(word, max_size=5).map(lambda ws: '"' + " ".join(ws) + '"'),
    st.text(chars, max_size=300),
    st.text(chars, min_size=1900, max_size=2100),
)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), st.text(chars, max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(chars, max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def hypothesis_settings(examples: int):
    """No deadline: an example's time is the machine's load, not Purser's. The short run draws the
    same examples every time, so `make test` passes or fails on the code alone; the long run
    draws new ones each time, to find what the short one cannot."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=examples <= FAST)


