"""mrkdwn injection: what people type reaches Slack only as literal text, never a mention, link or formatting Purser did not mean."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from store.models import Request
from tests.reliability.hostile.checks import (
    RAW,
    assert_inert,
    assert_no_leak,
    errors_in_reply,
    reply_text,
    said_in_reply,
    said_to_slack,
    settle,
)
from tests.reliability.hostile.world import MARKS, block_actions, form, view_submission
from tests.slack_requests import wait_for

# Hypothesis warns when the global `random` changes while it draws an example; here that is
# dramatiq's Redis consumer threads (a maintenance roll on each fetch), never the strategies.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")


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
