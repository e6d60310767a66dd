"""Hostile input over signed HTTP: fuzzed commands, buttons and modals; oversized and malformed bodies;
mrkdwn injection; other workspaces' ids; other Slack teams. Never a 500, never an exception's words,
never a mention or link Purser did not mean, never a word about a workspace the asker is not in."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import COMMANDS
from store import decisions, invitations, keys, workspaces
from store.models import ApiKey, AuditEvent, CreditEntry, Invitation, Member, Project, Request, Workspace
from store.money import parse_money
from store.permissions import Actor
from store.types import Role
from tests import factories as f
from tests.reliability.hostile_fixtures import (  # noqa: F401  (fixtures)
    RAW,
    TEAM,
    assert_inert,
    assert_no_leak,
    db,
    denials,
    errors_in_reply,
    reply_text,
    said_in_reply,
    said_to_slack,
    settle,
    slack,
    web,
    workers,
)
from tests.slack_requests import wait_for

# Hypothesis warns when the global `random` changes while it draws an example; here that is
# dramatiq's Redis consumer threads (a maintenance roll on each fetch), never the strategies.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

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


def _key_for(db, workers, ws: int, owner, name: str, project: str | None = None) -> int:
    req = db.run(keys.request_key, owner, ws, name=name, project=project)
    if req.state.value == "pending":
        admin = db.run(lambda s: s.scalars(select(Member).where(Member.workspace_id == ws, Member.role == Role.ADMIN)).first().slack_user_id)
        db.run(decisions.decide_request, Actor.slack(admin), req.id, approve=True)
    settle(workers)
    with db.session() as s:
        return s.scalars(select(ApiKey.id).where(ApiKey.request_id == req.id)).one()


@pytest.fixture
def world(db, workers, slack_api) -> World:
    alpha = f.workspace(db, "alpha", "production", team_id=TEAM)
    zulu = f.workspace(db, "zulu-secret", "production", team_id=TEAM, name="Zulu Moonshot Lab")
    admin, dev, viewer, billing = (f.member(db, alpha, role).slack_user_id for role in (Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING))
    z_admin_actor = f.member(db, zulu, Role.ADMIN)
    z_dev_actor = f.member(db, zulu, Role.DEVELOPER)
    db.run(workspaces.set_channels, f.OPERATOR, alpha, approvals="C0ALPHAAPPR", alerts="C0ALPHAALRT", audit_channel="C0ALPHAAUDT")
    db.run(workspaces.set_channels, f.OPERATOR, zulu, approvals="C0ZULUAPPR", alerts="C0ZULUALRT", audit_channel="C0ZULUAUDT")
    f.project(db, alpha, "search", budget=parse_money("$100"))
    f.project(db, zulu, "moonshot", budget=parse_money("$100"))
    z_key = _key_for(db, workers, zulu, z_dev_actor, "zbot", "moonshot")
    a_request = db.run(keys.request_key, Actor.slack(dev), alpha, name="pending-bot", project="search").id
    z_request = db.run(keys.request_key, z_dev_actor, zulu, name="zpending", project="moonshot").id
    [z_inv] = db.run(invitations.invite, z_admin_actor, zulu, ["U0ZINVITEE"], "developer")
    [a_inv] = db.run(invitations.invite, Actor.slack(admin), alpha, ["U0AINVITEE"], "developer")
    settle(workers)
    return World(alpha, zulu, admin, dev, viewer, billing, z_admin_actor.slack_user_id, z_dev_actor.slack_user_id, a_request, z_request, z_key, z_inv.invitation_id, a_inv.invitation_id, len(slack_api.calls))


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
_chars = st.characters(blacklist_categories=("Cs",))
word = st.one_of(st.sampled_from(HOSTILE), st.text(_chars, max_size=24))
command_text = st.one_of(
    st.lists(word, max_size=9).map(" ".join),
    st.lists(word, max_size=5).map(lambda ws: '"' + " ".join(ws) + '"'),
    st.text(_chars, max_size=300),
    st.text(_chars, min_size=1900, max_size=2100),
)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), st.text(_chars, max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(_chars, max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def hypothesis_settings(examples: int):
    """No deadline: an example's time is the machine's load, not Purser's. The short run draws the
    same examples every time, so `make test` passes or fails on the code alone; the long run
    draws new ones each time, to find what the short one cannot."""
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=examples <= FAST)


# -- fuzz: commands -----------------------------------------------------------------------


def fuzz_commands(db, slack, slack_api, workers, w: World, examples: int) -> None:
    @hypothesis_settings(examples)
    # Slack always names the channel a command was typed in (a DM's id starts with D).
    @given(command=st.sampled_from(sorted(COMMANDS)), user=st.sampled_from(w.users), text=command_text, channel=st.sampled_from(["C0GENERAL", "C0ALPHAAPPR", "C0ZULUAPPR", "D0DIRECT"]))
    def prop(command, user, text, channel):
        since = len(slack_api.calls)
        answer = slack.command(user, command, text, channel=channel)
        assert answer.status_code == 200, (command, text, answer.status_code, answer.text[:300])
        # Never silence: a reply (in the ack or through the response_url), or the form it opened.
        opened = any(call.method == "views.open" for call in slack_api.calls[since:])
        assert opened or any(t.strip() for t in said_in_reply(answer)), (command, text, "neither a reply nor a form")
        texts = said_in_reply(answer) + said_to_slack(slack_api, since)
        assert_no_leak(texts)
        assert_inert(texts, RAW[:-1] + ("`TICK`",), MARKS)

    prop()
    settle(workers)
    everything = said_to_slack(slack_api)
    assert_no_leak(everything)
    assert_inert(everything, RAW[:-1] + ("`TICK`",), MARKS)


def test_fuzzed_command_text_is_answered_without_error_or_markup(db, world, slack, slack_api, workers):
    fuzz_commands(db, slack, slack_api, workers, world, FAST)


@pytest.mark.slow
def test_fuzzed_command_text_at_length(db, world, slack, slack_api, workers):
    fuzz_commands(db, slack, slack_api, workers, world, SLOW)


# -- fuzz: buttons ------------------------------------------------------------------------


def fuzz_clicks(db, slack, slack_api, workers, w: World, examples: int) -> None:
    value = st.one_of(st.sampled_from(w.ids), st.integers(min_value=-(2**70), max_value=2**70).map(str), st.text(_chars, max_size=40), json_value)

    @hypothesis_settings(examples)
    @given(action=st.one_of(st.sampled_from(ACTIONS), st.text(_chars, max_size=20)), user=st.sampled_from(w.users), value=value, where=st.sampled_from(["channel", "home", "nowhere"]))
    def prop(action, user, value, where):
        since = len(slack_api.calls)
        answer = slack.interaction(block_actions(user, action, value, where=where))
        assert answer.status_code in ((200,) if action in ACTIONS else (200, 404)), (action, value, answer.status_code, answer.text[:300])
        texts = said_in_reply(answer) + said_to_slack(slack_api, since)
        assert_no_leak(texts)
        assert_inert(texts, RAW[:-1])

    prop()
    settle(workers)
    assert_no_leak(said_to_slack(slack_api))


def test_fuzzed_button_clicks_are_answered_without_error(db, world, slack, slack_api, workers):
    fuzz_clicks(db, slack, slack_api, workers, world, FAST)


@pytest.mark.slow
def test_fuzzed_button_clicks_at_length(db, world, slack, slack_api, workers):
    fuzz_clicks(db, slack, slack_api, workers, world, SLOW)


# -- fuzz: modal submissions --------------------------------------------------------------


def fuzz_submissions(db, slack, slack_api, workers, w: World, examples: int) -> None:
    ws_ids = st.sampled_from([w.alpha, w.zulu, 0, -1, 2**63, "1", None])
    metadata = st.one_of(
        st.text(_chars, max_size=60),
        json_value.map(json.dumps),
        st.builds(lambda ws, ch: json.dumps({"workspace_id": ws, "channel_id": ch}), ws_ids, st.one_of(st.none(), st.sampled_from(["C0GENERAL", ""]), st.text(_chars, max_size=12))),
        st.builds(lambda r: json.dumps({"request_id": r}), st.one_of(st.sampled_from([w.a_request, w.z_request]), json_value)),
    )
    field = st.one_of(st.sampled_from(HOSTILE), st.text(_chars, max_size=80), st.text(_chars, min_size=490, max_size=600))
    values = st.one_of(
        st.fixed_dictionaries({}, optional={b: field for b in ("name", "project", "limit", "expires", "reason")}).map(lambda d: form(**d)),
        st.dictionaries(st.sampled_from(["name", "project", "limit", "expires", "reason"]), json_value, max_size=5),
        json_value,
    )

    @hypothesis_settings(examples)
    @given(callback=st.one_of(st.sampled_from(FORMS), st.text(_chars, max_size=12)), user=st.sampled_from(w.users), meta=metadata, values=values)
    def prop(callback, user, meta, values):
        since = len(slack_api.calls)
        answer = slack.interaction(view_submission(user, callback, meta, values))
        assert answer.status_code in ((200,) if callback in FORMS else (200, 404)), (callback, meta, values, answer.status_code, answer.text[:300])
        if answer.content and callback in FORMS:
            assert answer.json().get("response_action") == "errors", answer.text[:300]
        texts = said_in_reply(answer) + errors_in_reply(answer) + said_to_slack(slack_api, since)
        assert_no_leak(texts)
        assert_inert(said_to_slack(slack_api, since), RAW[:-1] + ("`TICK`",), MARKS)

    prop()
    settle(workers)
    everything = said_to_slack(slack_api)
    assert_no_leak(everything)
    assert_inert(everything, RAW[:-1] + ("`TICK`",), MARKS)


def test_fuzzed_modal_submissions_are_answered_without_error(db, world, slack, slack_api, workers):
    fuzz_submissions(db, slack, slack_api, workers, world, FAST)


@pytest.mark.slow
def test_fuzzed_modal_submissions_at_length(db, world, slack, slack_api, workers):
    fuzz_submissions(db, slack, slack_api, workers, world, SLOW)


# -- bodies Slack would never send --------------------------------------------------------


BAD_PAYLOADS = ["{not json", "", "null", "[1, 2]", '"text"', "1e999", '{"type": 5, "user": {"id": "U1"}}', '{"type": "block_actions", "user": "U1"}', '{"type": "block_actions", "user": {"id": 7}}', "[" * 50_000]


def test_bodies_and_ids_slack_would_never_send_are_refused_and_change_nothing(db, world, slack, slack_api):
    """Oversized: 413. Malformed JSON in payload (or in an event): 400. Unknown action or form: ignored."""
    before = snapshot(db, world.alpha)
    big = urlencode({"command": "/ai-budget", "user_id": world.admin, "team_id": TEAM, "text": "set search $1 --reason " + "x" * 300_000}).encode()
    assert slack.post(big).status_code == 413
    # No Content-Length at all (chunked): the body is still measured.
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
    answer = httpx.post(slack.url, content=chunks, headers={"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64})
    assert answer.status_code == 413
    for payload in BAD_PAYLOADS:
        answer = slack.post(urlencode({"payload": payload}).encode())
        assert answer.status_code == 400, (payload[:40], answer.status_code, answer.text)
        assert_no_leak([answer.text])
    assert slack.post(b"\xed\xa0\x80 not utf-8").status_code == 400
    assert slack.post(b'{"type": "event_callback", "team_id": "' + TEAM.encode() + b'", "event": ' + b"[" * 50_000 + b"}", "application/json").status_code == 400
    assert snapshot(db, world.alpha) == before and len(slack_api.calls) == world.since
    # Well-formed, but naming a button or a form Purser never made.
    for action in ("request_approve_all", "REQUEST_APPROVE", "request_approve ", "", "key_reveal\x00"):
        answer = slack.interaction(block_actions(world.admin, action, str(world.a_request)))
        assert answer.status_code in (200, 404), (action, answer.status_code)
        assert_no_leak([answer.text])
    answer = slack.interaction(view_submission(world.admin, "key_new_v2", json.dumps({"workspace_id": world.alpha}), form(name="sneaky")))
    assert answer.status_code in (200, 404)
    assert snapshot(db, world.alpha) == before
    assert_no_leak(said_to_slack(slack_api))


def test_forged_modal_submissions_are_refused_audited_and_change_nothing(db, world, slack, slack_api, workers):
    """A modal's private_metadata is the submitter's to forge: someone else submits the deny form of a
    request, or a key form naming a workspace they are not in. Each is checked again on submit."""
    alpha_before, zulu_before = snapshot(db, world.alpha), snapshot(db, world.zulu)
    denied_before = len(denials(db, world.alpha)), len(denials(db, world.zulu))
    meta = json.dumps({"request_id": world.a_request})
    for user in (world.dev, world.viewer, world.billing, world.z_admin, OUTSIDER):
        answer = slack.interaction(view_submission(user, "deny_reason", meta, form(reason="because I can")))
        assert answer.status_code == 200
        body = answer.json()
        assert body["response_action"] == "errors" and body["errors"]["reason"]
        if user in (world.z_admin, OUTSIDER):  # not in alpha: told nothing about it
            assert "alpha" not in body["errors"]["reason"] and world.dev not in body["errors"]["reason"]
    # The requester themselves may not deny their own request either.
    own = slack.interaction(view_submission(world.dev, "deny_reason", meta, form(reason="never mind")))
    assert own.json()["response_action"] == "errors"
    assert snapshot(db, world.alpha) == alpha_before and snapshot(db, world.zulu) == zulu_before
    assert len(denials(db, world.alpha)) >= denied_before[0] + 6
    assert len(denials(db, world.zulu)) == denied_before[1]
    assert_no_leak(said_to_slack(slack_api))
    # A key form whose private_metadata names zulu, submitted by people who are not in it.
    posted = len(slack_api.channel_messages("C0ZULUAPPR"))
    for user in (world.admin, world.dev, OUTSIDER):
        answer = slack.interaction(view_submission(user, "key_new", json.dumps({"workspace_id": world.zulu, "channel_id": "C0GENERAL"}), form(name="infiltrator", project="moonshot", reason="hi")))
        assert answer.status_code == 200
        body = answer.json()
        assert body["response_action"] == "errors"
        shown = " ".join(body["errors"].values())
        for word in world.zulu_words(db):
            assert word not in shown, (word, shown)
    settle(workers)
    assert snapshot(db, world.zulu) == zulu_before
    assert len(denials(db, world.zulu)) == denied_before[1] + 3
    assert len(slack_api.channel_messages("C0ZULUAPPR")) == posted


def test_words_that_confuse_parsers_are_still_understood(db, world, slack, slack_api, workers):
    """Found by the long fuzz runs: Bolt mistook any form body containing "payload" for an interaction
    (and dropped the command); a NUL byte reached PostgreSQL, which refuses it (an unexpected error)."""
    answer = slack.command(world.admin, "/ai-audit", "payload")
    assert answer.status_code == 200 and "is not something /ai-audit does" in reply_text(answer)
    body = urlencode({"token": "unused", "team_id": TEAM, "channel_id": "C0PAYLOAD", "channel_name": "payload-team", "user_id": world.admin, "command": "/ai-team", "text": "list"}).encode()
    answer = slack.post(body)
    assert answer.status_code == 200 and "member(s)" in reply_text(answer)
    for text in ("list -w al\x00pha", "list -w \x00", "role U0NO\x00BODY admin"):
        answer = slack.command(world.admin, "/ai-team", text)
        assert answer.status_code == 200
        assert_no_leak(said_in_reply(answer))
    assert "Paused" in reply_text(slack.command(world.admin, "/ai-budget", 'pause search --reason "nul\x00byte"'))
    meta = json.dumps({"request_id": world.a_request})
    answer = slack.interaction(view_submission(world.admin, "deny_reason", meta, form(reason="no\x00pe")))
    assert answer.status_code == 200 and not answer.content
    settle(workers)
    with db.session() as s:
        assert s.scalar(select(Project.paused_reason).where(Project.slug == "search", Project.workspace_id == world.alpha)) == "nulbyte"
        assert s.get(Request, world.a_request).decision_note == "nope"
    assert_no_leak(said_to_slack(slack_api))


# -- other Slack teams ---------------------------------------------------------------------


def test_requests_naming_another_slack_team_are_refused_with_403(db, world, slack, slack_api):
    before = snapshot(db, world.alpha)
    intruder = "T0INTRUDER"
    sender = type(slack)(slack.url, slack.secret, intruder)
    answers = [
        sender.command(world.admin, "/ai-budget", "set search $1"),
        sender.command(world.admin, "/ai-team", "list"),
        slack.interaction(block_actions(world.admin, "request_approve", str(world.a_request), team=intruder)),
        slack.interaction(view_submission(world.admin, "deny_reason", json.dumps({"request_id": world.a_request}), form(reason="nope"), team=intruder)),
        sender.event({"type": "app_home_opened", "user": world.admin, "tab": "home"}),
    ]
    # A payload naming no team at all is not ours either.
    teamless = block_actions(world.admin, "request_approve", str(world.a_request))
    del teamless["team"], teamless["user"]["team_id"]
    answers.append(slack.interaction(teamless))
    for i, answer in enumerate(answers):
        assert answer.status_code == 403, (i, answer.text)
        assert world.admin not in answer.text and "alpha" not in answer.text
    # Events are handled after their ack: the same event from our own team, for someone else, is
    # waited for, so an intruder's event that had got through would have been handled by now too.
    assert snapshot(db, world.alpha) == before
    assert len(slack_api.calls) == world.since
    assert slack.event({"type": "app_home_opened", "user": world.dev, "tab": "home"}).status_code == 200
    wait_for(lambda: slack_api.home.get(world.dev), timeout=30)
    assert world.admin not in slack_api.home and [c.method for c in slack_api.calls[world.since :]] == ["views.publish"]
    assert snapshot(db, world.alpha) == before
    # Slack's own URL check carries no team and is still answered.
    challenge = slack.post(json.dumps({"type": "url_verification", "token": "x", "challenge": "c0ffee"}).encode(), "application/json")
    assert challenge.status_code == 200 and "c0ffee" in challenge.text


# -- mrkdwn injection ----------------------------------------------------------------------

EVIL = "<!channel> <!here> <@U123> <https://evil|click> *PWN* `TICK` _PWN_ ~PWN~ &"


def test_user_text_reaches_slack_only_as_literal_text(db, world, slack, slack_api, workers):
    """Free text (reasons, names, e-mails, anything echoed in an error) is shown, never interpreted."""
    replies = []

    def say(user, command, text, channel="C0GENERAL"):
        answer = slack.command(user, command, text, channel=channel)
        assert answer.status_code == 200
        replies.extend(said_in_reply(answer))
        return reply_text(answer)

    quoted = json.dumps(EVIL)  # one shell word, as Slack users quote
    say(world.admin, "/ai-workspace", "policy approval -w alpha")
    # reasons on requests: key, budget, cap, credit top-up, role change
    assert "request #" in say(world.dev, "/ai-key", f"new evil-bot --project search --reason {quoted}")
    assert "request #" in say(world.dev, "/ai-budget", f"request search $150 --reason {quoted}")
    assert "request #" in say(world.dev, "/ai-budget", f"cap $500 --reason {quoted}")
    assert "request #" in say(world.dev, "/ai-credits", f"add $5 --reason {quoted}")
    assert "request #" in say(world.dev, "/ai-team", f"role <@{world.viewer}|v> billing --reason {quoted}")
    # invitations: a developer's goes to the admins as a request with the invitees listed
    say(world.dev, "/ai-invite", f'"<!channel>@example.com" "*PWN*@evil.com" {quoted} "a_PWN_b@example.com" U0NEWONE')
    say(world.admin, "/ai-invite", f'"<!channel>@example.com" "<https://evil|click>" {quoted} "x_PWN_@example.com"')
    # names and words echoed in errors
    for command, text in (
        ("/ai-key", f"new {quoted}"),
        ("/ai-key", f"new ok-name --project {quoted}"),
        ("/ai-key", f"new ok-name2 --limit {quoted}"),
        ("/ai-key", f"new ok-name3 --expires {quoted}"),
        ("/ai-key", f"rotate {quoted}"),
        ("/ai-key", f"{quoted}"),
        ("/ai-key", f"new a b {quoted}"),
        ("/ai-budget", f"set {quoted} $5"),
        ("/ai-budget", f"set search {quoted}"),
        ("/ai-budget", f"pause {quoted} --reason x"),
        ("/ai-budget", f"{quoted}"),
        ("/ai-budget", f"set search $5 --period {quoted}"),
        ("/ai-team", f"role {quoted} admin"),
        ("/ai-team", f"remove {quoted}"),
        ("/ai-team", f"role <@{world.viewer}|v> {quoted}"),
        ("/ai-workspace", f"create {quoted}"),
        ("/ai-workspace", f"create okname --env {quoted}"),
        ("/ai-workspace", f"channels approvals={quoted}"),
        ("/ai-workspace", f"allowlist add {quoted}"),
        ("/ai-workspace", f"policy {quoted}"),
        ("/ai-workspace", f"use {quoted}"),
        ("/ai-workspace", f"templates {quoted} $5"),
        ("/ai-audit", f"export {quoted}"),
        ("/ai-audit", f"recent {quoted}"),
        ("/ai-usage", f"--days {quoted}"),
        ("/ai-usage", f"--project {quoted}"),
        ("/ai-usage", f"{quoted}"),
        ("/ai-credits", f"add {quoted}"),
        ("/ai-team", f"-w {quoted} list"),
        ("/ai-key", f"list {quoted} --{EVIL[:10]}"),
    ):
        say(world.admin, command, text)
    # a pause reason goes to the alerts channel, and shows in the overview and in a second pause's refusal
    say(world.admin, "/ai-budget", f"pause search --reason {quoted}")
    say(world.admin, "/ai-budget", f"pause search --reason {quoted}")
    say(world.admin, "/ai-budget", "show")
    settle(workers)
    # the deny modal: an admin's reason shown on the approval message and to the requester
    with db.session() as s:
        pending = list(s.scalars(select(Request.id).where(Request.workspace_id == world.alpha, Request.state == "pending").order_by(Request.id)))
    assert len(pending) >= 6
    for request_id in pending[:3]:
        answer = slack.interaction(view_submission(world.admin, "deny_reason", json.dumps({"request_id": request_id}), form(reason=EVIL)))
        assert answer.status_code == 200 and not answer.content, answer.text
    # the key form: a reason in free text, and names that are refused in the form
    for name, project in (("form-bot", "search"), (EVIL, "search"), ("form-bot2", EVIL)):
        answer = slack.interaction(view_submission(world.dev, "key_new", json.dumps({"workspace_id": world.alpha, "channel_id": "C0GENERAL"}), form(name=name, project=project, reason=EVIL, limit="$5")))
        assert_no_leak(errors_in_reply(answer))  # plain text: shown verbatim, never interpreted
    settle(workers)
    # what an admin sees on clicking: the deny modal's summary, late clicks, App Home
    slack.interaction(block_actions(world.admin, "request_deny", str(pending[3])))
    slack.interaction(block_actions(world.admin, "request_approve", str(pending[0])))
    slack.event({"type": "app_home_opened", "user": world.admin, "tab": "home"})
    wait_for(lambda: slack_api.home.get(world.admin), timeout=30)
    # the audit log in Slack, and the digest
    say(world.admin, "/ai-audit", "recent 50")
    say(world.admin, "/ai-audit", "export jsonl")
    say(world.admin, "/ai-audit", "export csv")
    from workers import maintenance

    maintenance.post_digest.send(world.alpha)
    settle(workers)
    wait_for(lambda: slack_api.channel_messages("C0ALPHAAUDT"), timeout=30)

    everything = replies + said_to_slack(slack_api)
    assert_inert(everything, RAW + ("`TICK`",), MARKS)
    assert_no_leak(everything)
    # …and the words are still there to read, as typed (in code spans, which Slack formats and links nothing in).
    shown = "\n".join(said_to_slack(slack_api))
    assert "&lt;!channel&gt;" in shown and "`&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil|click&gt; *PWN* ˋTICKˋ _PWN_ ~PWN~ &amp;`" in shown
    # what Slack escaped in a command (a typed @channel arrives as <!channel>) is shown as it was typed
    assert "`@channel @here @U123 click (https://evil) *PWN* ˋTICKˋ _PWN_ ~PWN~ &amp;`" in shown
    approvals = "\n".join(m.text + json.dumps(m.blocks) for m in slack_api.channel_messages("C0ALPHAAPPR"))
    assert "&lt;!channel&gt;" in approvals and "Reason" in approvals
    assert any("`@channel @here @U123 click (https://evil)" in json.dumps(m.blocks) for m in slack_api.channel_messages("C0ALPHAALRT"))


# -- other workspaces' ids -----------------------------------------------------------------

CROSS_COMMANDS = [
    ("/ai-key", "new spy -w zulu-secret"),
    ("/ai-key", "new spy --project moonshot -w zulu-secret"),
    ("/ai-key", "new -w zulu-secret"),
    ("/ai-key", "list -w zulu-secret"),
    ("/ai-key", "list --all -w zulu-secret"),
    ("/ai-key", "revoke zbot -w zulu-secret"),
    ("/ai-key", "rotate #{z_key} -w zulu-secret"),
    ("/ai-key", "disable {z_key} -w zulu-secret"),
    ("/ai-invite", "U0SPY0001 --role admin -w zulu-secret"),
    ("/ai-team", "list -w zulu-secret"),
    ("/ai-team", "role <@{z_dev}|d> admin -w zulu-secret"),
    ("/ai-team", "role U0NOBODY1 admin -w zulu-secret"),
    ("/ai-team", "remove <@{z_dev}|d> -w zulu-secret"),
    ("/ai-team", "remove U0NOBODY1 -w zulu-secret"),
    ("/ai-team", "leave -w zulu-secret"),
    ("/ai-budget", "show -w zulu-secret"),
    ("/ai-budget", "set moonshot $1 -w zulu-secret"),
    ("/ai-budget", "set newthing $1 -w zulu-secret"),
    ("/ai-budget", 'request moonshot $500 --reason "please" -w zulu-secret'),
    ("/ai-budget", "cap $1 -w zulu-secret"),
    ("/ai-budget", 'cap $1 --reason "please" -w zulu-secret'),
    ("/ai-budget", 'pause moonshot --reason "x" -w zulu-secret'),
    ("/ai-budget", 'pause nothing --reason "x" -w zulu-secret'),
    ("/ai-budget", "resume moonshot -w zulu-secret"),
    ("/ai-credits", "balance -w zulu-secret"),
    ("/ai-credits", "add $5 -w zulu-secret"),
    ("/ai-credits", 'add $5 --reason "pls" -w zulu-secret'),
    ("/ai-usage", "-w zulu-secret"),
    ("/ai-usage", "--project moonshot -w zulu-secret"),
    ("/ai-audit", "recent -w zulu-secret"),
    ("/ai-audit", "verify -w zulu-secret"),
    ("/ai-audit", "export csv -w zulu-secret"),
    ("/ai-workspace", "use zulu-secret"),
    ("/ai-workspace", "policy auto -w zulu-secret"),
    ("/ai-workspace", "channels approvals=C0SPY -w zulu-secret"),
    ("/ai-workspace", "allowlist -w zulu-secret"),
    ("/ai-workspace", "allowlist add 0.0.0.0/0 -w zulu-secret"),
    ("/ai-workspace", "allowlist remove 10.0.0.0/8 -w zulu-secret"),
    ("/ai-workspace", "templates -w zulu-secret"),
    ("/ai-workspace", "templates developer $1000 -w zulu-secret"),
]


def cross_commands(db, world, slack, slack_api, workers, users) -> None:
    db.run(workspaces.add_allowlist, f.OPERATOR, world.zulu, "10.0.0.0/8")
    zulu_words = world.zulu_words(db)
    posted = len(slack_api.channel_messages("C0ZULUAPPR"))
    problems = []
    for user in users:
        for command, template in CROSS_COMMANDS:
            text = template.format(z_key=world.z_key, z_dev=world.z_dev)
            before, denied = snapshot(db, world.zulu), len(denials(db, world.zulu))
            since = len(slack_api.calls)
            answer = slack.command(user, command, text)
            reply = reply_text(answer)
            told = [reply, *said_to_slack(slack_api, since)]
            leaked = [w for w in zulu_words if any(w in t for t in told)]
            if answer.status_code != 200 or leaked:
                problems.append(f"{user} {command} {text}: {answer.status_code} leaked {leaked}: {reply[:200]!r}")
            if snapshot(db, world.zulu) != before:
                problems.append(f"{user} {command} {text}: changed zulu")
            if len(denials(db, world.zulu)) <= denied:
                problems.append(f"{user} {command} {text}: no denial audited ({reply[:120]!r})")
    settle(workers)
    assert len(slack_api.channel_messages("C0ZULUAPPR")) == posted and not slack_api.channel_messages("C0ZULUALRT")
    assert not problems, "\n".join(problems)


def test_commands_naming_another_workspace_are_refused_audited_and_say_nothing_of_it(db, world, slack, slack_api, workers):
    """An admin of alpha, the likeliest to try: every command; the long run adds a developer and an outsider."""
    cross_commands(db, world, slack, slack_api, workers, [world.admin])


@pytest.mark.slow
def test_commands_naming_another_workspace_by_every_kind_of_stranger(db, world, slack, slack_api, workers):
    cross_commands(db, world, slack, slack_api, workers, [world.admin, world.dev, world.viewer, OUTSIDER])


def cross_buttons(db, world, slack, slack_api, workers, users, places) -> None:
    zulu_words = world.zulu_words(db)
    clicks = [
        ("request_approve", world.z_request),
        ("request_deny", world.z_request),
        ("key_reveal", world.z_key),
        ("invitation_accept", world.z_invitation),
        ("invitation_decline", world.z_invitation),
    ]
    problems = []
    for user in users:
        for action, target in clicks:
            for where in places:
                before, denied = snapshot(db, world.zulu), len(denials(db, world.zulu))
                since = len(slack_api.calls)
                answer = slack.interaction(block_actions(user, action, str(target), where=where))
                told = said_to_slack(slack_api, since)
                leaked = [w for w in zulu_words if any(w in t for t in told)]
                if answer.status_code != 200 or leaked or not told:
                    problems.append(f"{user} {action} {target} ({where}): {answer.status_code} leaked {leaked}; told {told[:2]}")
                if snapshot(db, world.zulu) != before:
                    problems.append(f"{user} {action} {target}: changed zulu")
                if len(denials(db, world.zulu)) <= denied:
                    problems.append(f"{user} {action} {target}: no denial audited ({told[:1]})")
    settle(workers)
    assert not problems, "\n".join(problems)


def test_buttons_carrying_another_workspaces_ids_are_refused_audited_and_say_nothing_of_it(db, world, slack, slack_api, workers):
    cross_buttons(db, world, slack, slack_api, workers, [world.admin, OUTSIDER], ["channel"])


@pytest.mark.slow
def test_buttons_carrying_another_workspaces_ids_from_everywhere(db, world, slack, slack_api, workers):
    cross_buttons(db, world, slack, slack_api, workers, [world.admin, world.dev, world.viewer, OUTSIDER], ["channel", "home", "nowhere"])
