"""A spend spike from the clock's job to the alerts channel, its chart under it, and its Mute buttons clicked.

Spend is seeded through ingest at explicit times and the job is given the instant it
checks, so the run's clock decides nothing. Clicks reach the app signed as Slack sends them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from bot.blocks.spikes import MUTE_DAY, MUTE_WEEK
from store import budgets, spikes, workspaces
from store.models import Action, AuditEvent
from store.models_spikes import SpikeMute
from store.money import parse_money
from store.types import ActionKind, ActionStatus, Role, utcnow
from tests import factories as f
from tests.bot.conftest import TEAM
from tests.store.test_spikes import USUAL, flat, seed
from tests.workers.test_actors import live_key
from workers import maintenance
from workers.clock import Clock

UTC = timezone.utc
ALERTS = "C0ALERTS"
CHECK = datetime(2027, 6, 15, 15, 5, tzinfo=UTC)  # judges Tuesday 15 June, 14:00–15:00


def spiking_workspace(db, stub_workers):
    ws = f.workspace(db, "acme", "development", team_id=TEAM)
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_channels, f.OPERATOR, ws, alerts=ALERTS)
    db.run(budgets.create_project, f.OPERATOR, ws, "search", budget_micros=parse_money("$10,000"))
    key = live_key(db, dev, ws, stub_workers, name="crawler", project="search")
    amounts = flat(CHECK)
    amounts[spikes.last_complete_hour(CHECK)] = 5 * USUAL
    seed(db, key.id, amounts, CHECK)
    return ws, admin, dev, key


def click(slack, user: str, action_id: str, message):
    """A Mute button of the alert, clicked as Slack sends it (with the message's blocks)."""
    value = next(e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id)
    return slack.click(user, action_id, value, channel=message.channel, message_ts=message.ts, blocks=message.blocks)


def test_the_clock_job_posts_the_alert_and_its_chart_and_only_an_admin_can_mute(db, web, slack, slack_api, stub_workers):
    ws, admin, dev, key = spiking_workspace(db, stub_workers)
    maintenance.check_spikes.send(CHECK.isoformat())
    stub_workers.settle()

    [alert, chart] = slack_api.channel_messages(ALERTS)
    said = alert.text + json.dumps(alert.blocks, ensure_ascii=False)
    assert alert.text == "Spend spike: Project search spent $10.00 in the last hour, 5.0× its usual $2.00"
    assert "$10.00 in the hour Tue 15 Jun 14:00–15:00 UTC, 5.0× its usual $2.00" in said and "above 3×" in said
    assert "$10,000.00" in said and "monthly budget" in said and "crawler" in said
    [asked] = slack_api.calls_to("files.getUploadURLExternal")
    assert "5.0 times the usual $2.00" in asked.args["alt_txt"]
    [done] = slack_api.calls_to("files.completeUploadExternal")
    [uploaded] = slack_api.files
    assert chart.thread_ts == alert.ts and chart.files[0]["id"] == uploaded.id and uploaded.mimetype == "image/png"
    assert json.loads(done.args["files"])[0]["id"] == uploaded.id

    refused = click(slack, dev.slack_user_id, MUTE_DAY, alert)
    assert refused.status_code == 200
    [told] = [m for m in slack_api.ephemeral if m.user == dev.slack_user_id]
    assert "Only an Admin can mute spike alerts; you are a Developer." in told.text
    with db.session() as s:
        assert list(s.scalars(select(SpikeMute))) == []
        assert s.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "spike.mute")).all() == ["denied"]

    before = utcnow()
    click(slack, admin.slack_user_id, MUTE_WEEK, alert)
    with db.session() as s:
        [mute] = s.scalars(select(SpikeMute))
        assert mute.key_id == key.id and timedelta(days=7) <= mute.until - before < timedelta(days=7, minutes=1)
        assert s.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "spike.mute").order_by(AuditEvent.id)).all() == ["denied", "ok"]
    [alert, _] = slack_api.channel_messages(ALERTS)
    assert "muted spike alerts for key `crawler`" in json.dumps(alert.blocks, ensure_ascii=False) and "Spend spike" in json.dumps(alert.blocks, ensure_ascii=False)
    assert not [b for b in alert.blocks if b["type"] == "actions"]


def test_a_chart_that_fails_never_holds_back_the_alert(db, web, slack_api, stub_workers):
    ws, admin, dev, key = spiking_workspace(db, stub_workers)
    slack_api.fail("files.getUploadURLExternal", error="not_in_channel", times=5)
    maintenance.check_spikes.send(CHECK.isoformat())
    stub_workers.settle()
    [alert] = slack_api.channel_messages(ALERTS)
    assert alert.text.startswith("Spend spike") and slack_api.files == []
    with db.session() as s:
        [action] = s.scalars(select(Action).where(Action.kind == ActionKind.POST_SPIKE.value))
        assert action.status is ActionStatus.DONE


def test_the_clock_checks_spikes_a_few_minutes_past_every_hour():
    clock = Clock(lock=None)
    trigger = clock.scheduler.get_job("check_spikes").trigger
    assert str(trigger) == "cron[minute='5']"
