"""A temporary raise end to end: asked for in Slack, approved with a click, announced, and falling back by itself after a new year.

Signed requests over HTTP to the running app with the workers running, against the Slack
Web API double (which validates every Block Kit payload); the clock's own jobs (as
workers/clock.py schedules them) are run under the test's clock as it moves.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from store import workspaces
from store.authz import decide, load_key_state
from store.money import parse_money
from store.secrets import hash_secret
from store.types import Role
from tests import factories as f
from workers import maintenance
from workers.clock import Clock

APPROVALS, ALERTS = "C0APPROVALS", "C0ALERTS"
UTC = timezone.utc
USD = parse_money


class Leading:
    """The clock's lock, held: this clock is the leader."""

    held = True

    def tick(self) -> bool:
        return True

    def release(self) -> None:
        pass


def run_clock_job(name: str) -> None:
    """What the clock does when a job is due: its scheduled call, which enqueues the job's actor."""
    job = Clock(Leading()).scheduler.get_job(name)
    job.func(*job.args)


def heard(db, secret: str) -> tuple[int, str]:
    with db.session() as s:
        decision = decide(load_key_state(s, hash_secret(secret)), "127.0.0.1", None)
    return decision.status, decision.reason


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def raise_requests(slack_api) -> list:
    return [m for m in slack_api.channel_messages(APPROVALS) if m.text.startswith("Temporary budget raise request #")]


def said(slack_api, channel: str) -> list[str]:
    return [json.dumps(m.blocks, ensure_ascii=False) for m in slack_api.channel_messages(channel)]


@pytest.fixture
def paused_at_year_end(db, clock):
    """30 December, midday: project `search` has spent its $100 budget. Made before the app and its
    workers start, so no worker races the factories to make the key; what it emitted is swept later."""
    clock.move_to(datetime(2026, 12, 30, 12, 0, tzinfo=UTC))
    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS, alerts=ALERTS)
    f.project(db, ws, "search", budget=USD("$100"))
    key_id, secret = f.key(db, ws, dev, "batch", project="search", limit=USD("$1,000"))
    assert f.spend(db, key_id, USD("$100")).paused == ["project:search"]
    return clock, ws, admin, dev, key_id, secret


def test_a_temporary_raise_resumes_a_project_then_falls_back_after_the_new_year(db, paused_at_year_end, slack, slack_api, stub_workers):
    clock, ws, admin, dev, key_id, secret = paused_at_year_end
    maintenance.sweep_outbox.send(0)  # what the factories emitted before the workers started
    stub_workers.settle()
    assert heard(db, secret) == (402, "project_budget")

    answer = slack.command(dev.slack_user_id, "/ai-budget", 'raise search +$50 --for 3d --reason "year-end batch"').json()["text"]
    assert "raise `search`'s budget by $50.00 for 3 days" in answer and "request #" in answer
    stub_workers.settle()
    [approval] = raise_requests(slack_api)
    assert "budget raised by $50.00 for 3 days" in approval.text and "year-end batch" in json.dumps(approval.blocks)

    assert slack.click(admin, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts).status_code == 200
    stub_workers.settle()
    [approval] = raise_requests(slack_api)
    assert "Approved" in json.dumps(approval.blocks) and "request_approve" not in json.dumps(approval.blocks)
    assert heard(db, secret) == (200, "ok")
    alerts = said(slack_api, ALERTS)
    assert any("raised by $50.00 until 2027-01-02 12:00 UTC" in a and "its limit is $150.00 now" in a for a in alerts)
    assert any("is running again: a temporary raise of $50.00" in a for a in alerts)

    # New year: a new period, and the raise still counts against January's spend.
    clock.move_to(datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    run_clock_job("roll_over_periods")
    run_clock_job("end_raises")
    f.spend(db, key_id, USD("$120"))
    stub_workers.settle()
    assert heard(db, secret) == (200, "ok")
    shown = slack.command(dev.slack_user_id, "/ai-budget", "show").json()["text"]
    assert "$120.00 / $150.00 (with $50.00 of temporary raises)" in shown
    assert not any("ended" in a for a in said(slack_api, ALERTS))

    # Its end, on the 2nd: the clock notices, and the project is over its budget as set.
    clock.move_to(datetime(2027, 1, 2, 12, 1, tzinfo=UTC))
    assert heard(db, secret) == (402, "project_budget")
    run_clock_job("end_raises")
    stub_workers.settle()
    alerts = said(slack_api, ALERTS)
    assert sum("The temporary raise of $50.00 on project `search` ended" in a for a in alerts) == 1
    assert any("Project `search` is paused: budget of $100.00 spent" in a for a in alerts)
    run_clock_job("end_raises")  # again: nothing more to say
    stub_workers.settle()
    assert sum("ended at" in a for a in said(slack_api, ALERTS)) == 1
    shown = slack.command(dev.slack_user_id, "/ai-budget", "show").json()["text"]
    assert "$120.00 / $100.00 monthly" in shown and "temporary" not in shown
    dm = [m.text for m in slack_api.channel_messages("D" + dev.slack_user_id[1:])]
    assert any("was approved" in t for t in dm)
