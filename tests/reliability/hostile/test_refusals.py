"""Bodies and ids Slack would never send, forged modals, words that confuse parsers, other Slack teams: refused, audited where they are denials, and nothing changes."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from store.models import Project, Request
from tests.reliability.hostile.checks import (
    TEAM,
    assert_no_leak,
    denials,
    reply_text,
    said_in_reply,
    said_to_slack,
    settle,
)
from tests.reliability.hostile.world import (
    OUTSIDER,
    block_actions,
    form,
    snapshot,
    view_submission,
)
from tests.slack_requests import wait_for

# Hypothesis warns when the global `random` changes while it draws an example; here that is
# dramatiq's Redis consumer threads (a maintenance roll on each fetch), never the strategies.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")


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
