"""Charts and statements drawn for people whose standing changed after they asked, and a
statement one of whose recipients Slack cannot reach."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from dramatiq import Retry
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from store import members, statements
from store.home_charts import home_charts
from store.ingest import UsageIn, ingest_usage
from store.models import Action, AuditEvent, SlackMessage, Workspace
from store.money import parse_money
from store.overview import home
from store.types import ActionKind, Role, utcnow
from store.workspace_deletion import delete_workspace
from tests import factories as f
from workers.handlers import charts
from workers.handlers import statements as statement_handler
from workers.perform import perform
from workers.runtime import Runtime

UTC = timezone.utc


def team_of(db, ws):
    with db.session() as s:
        return s.get(Workspace, ws).team_id


def actions_of(db, kind: ActionKind) -> list[Action]:
    with db.session() as s:
        return list(s.scalars(select(Action).where(Action.kind == kind.value)))


class Drawing:
    """Slack as far as App Home's chart goes: uploads remembered by ref, Home publishes counted."""

    def __init__(self, db) -> None:
        self.db, self.uploaded, self.published = db, [], 0
        outer = self

        class Client:
            @staticmethod
            def views_publish(**kw):
                outer.published += 1

        self.client = Client

    def upload(self, ref, channel, **kw):
        self.uploaded.append((ref, kw["alt_text"]))
        with self.db.session() as s:
            s.add(SlackMessage(ref=ref, channel="", ts=f"F{len(self.uploaded):06d}"))
            s.commit()
        return f"F{len(self.uploaded):06d}"


def ask_for_home_chart(db, ws, who) -> Action:
    team = team_of(db, ws)
    db.run(home_charts, team, who.slack_user_id, db.run(home, team, who.slack_user_id), utcnow())
    [action] = actions_of(db, ActionKind.HOME_CHART)
    return action


@pytest.mark.parametrize("what", ["member removed", "workspace deleted"])
def test_a_home_chart_asked_for_by_someone_who_left_completes_quietly(db, what):
    ws = f.workspace(db, "acme", "development")
    admin, viewer = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.VIEWER)
    action = ask_for_home_chart(db, ws, viewer)
    if what == "member removed":
        db.run(members.remove_member, admin, ws, f.member_id(db, ws, viewer))
    else:
        db.run(delete_workspace, admin, ws, force=True)
    slack = Drawing(db)
    perform(charts.home_chart, action.id, Runtime(db=db, slack=slack))  # no Retry: nothing left to draw
    with db.session() as s:
        assert list(s.scalars(select(AuditEvent.action).where(AuditEvent.outcome == "denied"))) == []
        assert s.get(Action, action.id).status.value == "done"
    assert slack.uploaded == []


def test_an_admin_demoted_before_their_home_chart_is_drawn_gets_no_chart_filed_as_the_workspaces(db):
    ws = f.workspace(db, "acme", "development")
    admin, other = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search")
    mine, _ = f.key(db, ws, admin, name="mine", project="search")
    theirs, _ = f.key(db, ws, f.member(db, ws, Role.DEVELOPER), name="theirs", project="search")
    now = utcnow()
    db.run(ingest_usage, [UsageIn("a", mine, parse_money("$1"), now), UsageIn("b", theirs, parse_money("$99"), now)], now)
    action = ask_for_home_chart(db, ws, admin)
    assert ":all:" in action.payload["ref"]
    db.run(members.change_role, other, ws, f.member_id(db, ws, admin), Role.DEVELOPER)
    slack = Drawing(db)
    perform(charts.home_chart, action.id, Runtime(db=db, slack=slack))
    assert slack.uploaded == []  # not their own $1 under the workspace's ref
    # Asked again as a Developer: their own keys' chart, under a ref of their own.
    second = ask_for_home_chart_again(db, ws, admin, action.id)
    perform(charts.home_chart, second.id, Runtime(db=db, slack=slack))
    [(ref, alt)] = slack.uploaded
    assert ":m" in ref and "Spent so far: $1.00" in alt


def ask_for_home_chart_again(db, ws, who, done_id) -> Action:
    team = team_of(db, ws)
    db.run(home_charts, team, who.slack_user_id, db.run(home, team, who.slack_user_id), utcnow())
    [action] = [a for a in actions_of(db, ActionKind.HOME_CHART) if a.id != done_id]
    return action


class Response(dict):
    headers: dict = {}


class OneGone:
    """Slack for a statement's DMs: one recipient's account is deactivated."""

    def __init__(self, gone: str) -> None:
        self.gone, self.dms, self.files = gone, [], []

    def dm(self, ref, user, text, blocks, **kw):
        if user == self.gone:
            raise SlackApiError("user_disabled", Response(ok=False, error="user_disabled"))
        self.dms.append(user)

    def upload_dm(self, ref, users, **kw):
        assert self.gone not in users
        self.files.append((ref, tuple(users)))


def test_one_deactivated_recipient_does_not_keep_the_statement_from_the_others(db):
    ws = f.workspace(db, "acme", "development")
    gone, other = f.member(db, ws, Role.ADMIN, slack_user_id="U0AAAAAA1"), f.member(db, ws, Role.ADMIN, slack_user_id="U0AAAAAA2")
    billing = f.member(db, ws, Role.BILLING, slack_user_id="U0BBBBBB1")
    with db.session() as s:
        s.get(Workspace, ws).created_at = datetime(2027, 4, 20, tzinfo=UTC)
        s.commit()
    db.run(statements.close_statement, f.OPERATOR, ws, datetime(2027, 5, 1).date(), datetime(2027, 6, 1, 6, tzinfo=UTC))
    [action] = actions_of(db, ActionKind.POST_STATEMENT)
    slack = OneGone(gone.slack_user_id)
    try:
        perform(statement_handler.post_statement, action.id, Runtime(db=db, slack=slack))
    except Retry:
        pytest.fail("a deactivated recipient made the statement wait for a retry")
    assert sorted(slack.dms) == sorted([other.slack_user_id, billing.slack_user_id])
    assert sorted(users for _, users in slack.files) == sorted([(other.slack_user_id,), (other.slack_user_id,), (billing.slack_user_id,), (billing.slack_user_id,)])
