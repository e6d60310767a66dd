"""The monthly statement through the Slack double: asked for with /ai-credits statement, and sent by the clock's job on the 1st."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

import pytest

from store import credits, keys
from store.ingest import UsageIn, ingest_usage
from store.permissions import Actor
from store.statements import close_statement
from store.types import Role
from tests import factories as f
from workers import maintenance

UTC = timezone.utc
ADMINS, BILLING, DEV = ("U0ADMIN01", "U0ADMIN02"), "U0BILLING", "U0DEVELOP"


def dm(user: str) -> str:
    return "D" + user[1:]


def shop(db, clock, workers, opened: datetime) -> int:
    clock.move_to(opened)
    ws = f.workspace(db, "prod", "development")
    for admin in ADMINS:
        f.member(db, ws, Role.ADMIN, slack_user_id=admin)
    billing = f.member(db, ws, Role.BILLING, slack_user_id=BILLING)
    dev = f.member(db, ws, Role.DEVELOPER, slack_user_id=DEV)
    f.project(db, ws, "search", budget=300_000_000)
    db.run(keys.request_key, dev, ws, name="searcher", project="search")  # approved at once in development
    workers.settle()  # the workers make the key (and DM its owner)
    key = db.run(lambda s: keys.find_key(s, dev, ws, "searcher").id)
    db.run(credits.add_credit, billing, ws, 200_000_000, "November funds")
    for n, (hours, micros) in enumerate(((5, 1_234_567), (30, 2_000_000), (50, 333))):
        at = opened + timedelta(hours=hours)
        clock.move_to(at)
        db.run(ingest_usage, [UsageIn(f"e2e-{n}", key, micros, at, model="openai/gpt-4o")], at)
    return ws


def statements_to(slack_api, user: str) -> list:
    return [m for m in slack_api.channel_messages(dm(user)) if "Statement" in m.text or m.files]


def statement_files(slack_api) -> dict[str, object]:
    return {u.filename.rsplit(".", 1)[1]: u for u in slack_api.files}


def test_a_billing_manager_asks_for_the_statement_and_gets_it_here_and_by_dm(db, clock, slack, slack_api, web, stub_workers):
    shop(db, clock, stub_workers, datetime(2027, 11, 2, tzinfo=UTC))
    clock.move_to(datetime(2027, 11, 10, 9, tzinfo=UTC))
    answer = slack.command(BILLING, "/ai-credits", "statement").json()
    said = answer["text"] + str(answer.get("blocks"))
    assert "Statement for prod, November 2027" in said and "preview, not closed" in said.lower() and "$3.234900" not in said
    assert "$3.2349" in said and "Sent to your DMs" in said
    stub_workers.settle()
    [message] = [m for m in statements_to(slack_api, BILLING) if not m.files]
    assert "Statement for prod, November 2027" in message.text and "search" in str(message.blocks)
    files = statement_files(slack_api)
    assert files["png"].channels == [dm(BILLING)] and files["png"].alt_txt.startswith("Spend in prod, November 2027")
    assert [c.args["alt_txt"] for c in slack_api.calls_to("files.getUploadURLExternal") if c.args["filename"].endswith(".png")] == [files["png"].alt_txt]
    rows = list(csv.DictReader(io.StringIO(slack_api.file_bytes(files["csv"].id).decode())))
    assert sum(int(r["amount_micros"]) for r in rows if r["kind"] == "spend") == 1_234_567 + 2_000_000 + 333
    for admin in ADMINS:  # asked for by one, sent to that one
        assert not statements_to(slack_api, admin)


def test_a_developer_is_refused_in_plain_words(db, clock, slack, slack_api, web, stub_workers):
    shop(db, clock, stub_workers, datetime(2027, 11, 2, tzinfo=UTC))
    answer = slack.command(DEV, "/ai-credits", "statement --month 2027-11").json()["text"]
    assert "add credit or view statements" in answer and "Billing Manager" in answer, answer
    stub_workers.settle()
    assert not statements_to(slack_api, DEV) and not slack_api.files


def test_a_month_written_wrong_is_explained(db, clock, slack, web, stub_workers):
    shop(db, clock, stub_workers, datetime(2027, 11, 2, tzinfo=UTC))
    answer = slack.command(BILLING, "/ai-credits", "statement --month November").json()["text"]
    assert "is not a month" in answer and "like 2026-11" in answer


def run_the_job(stub_workers) -> None:
    maintenance.post_statements.send()
    stub_workers.settle()


@pytest.fixture
def closing_day(db, clock, slack_api, stub_workers) -> int:
    ws = shop(db, clock, stub_workers, datetime(2028, 2, 2, tzinfo=UTC))  # a leap February
    clock.move_to(datetime(2028, 3, 1, 6, tzinfo=UTC))
    return ws


def test_the_monthly_job_sends_each_admin_and_billing_manager_the_statement_once(db, closing_day, slack_api, stub_workers):
    run_the_job(stub_workers)
    run_the_job(stub_workers)  # a second run (a retry, another clock) sends nothing more
    for user in (*ADMINS, BILLING):
        texts = [m for m in slack_api.channel_messages(dm(user)) if not m.files]
        assert len(texts) == 1 and "Statement for prod, February 2028" in texts[0].text and "preview" not in texts[0].text
        assert sorted(fl["name"] for m in slack_api.channel_messages(dm(user)) for fl in m.files) == ["statement-prod-2028-02.csv", "statement-prod-2028-02.png"]
    assert not statements_to(slack_api, DEV)
    # one upload of each file a person, so a DM Slack refuses for one costs no one else the file
    people = len((*ADMINS, BILLING))
    pngs = [u for u in slack_api.files if u.filename.endswith(".png")]
    assert len(slack_api.files) == 2 * people and sorted(c for u in pngs for c in u.channels) == sorted(dm(u) for u in (*ADMINS, BILLING))
    asked = [c for c in slack_api.calls_to("files.getUploadURLExternal") if c.args["filename"].endswith(".png")]
    assert len(asked) == people and len({c.args["alt_txt"] for c in asked}) == 1
    alt = asked[0].args["alt_txt"]
    assert "29 days" not in alt and "Feb 29" in alt and "Budget search $300" in alt
    assert len(slack_api.calls_to("files.completeUploadExternal")) == 2 * people
    # Posted again under the same refs (what `purser statement --post` does for a closed month): edited, not sent twice.
    db.run(close_statement, Actor.operator("cli:test"), closing_day, date(2028, 2, 1))
    stub_workers.settle()
    for user in (*ADMINS, BILLING):
        [text] = [m for m in slack_api.channel_messages(dm(user)) if not m.files]
        assert text.updated == 1
    assert len(slack_api.files) == 2 * people and len(slack_api.calls_to("files.completeUploadExternal")) == 2 * people


def test_the_clock_runs_the_statements_job_at_six_every_day():
    from workers.clock import Clock

    class NoLock:
        held = False

    job = Clock(NoLock()).scheduler.get_job("post_statements")
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert (fields["hour"], fields["minute"], fields["day"]) == ("6", "0", "*")


def test_a_chart_that_cannot_be_drawn_does_not_hold_back_the_statement(db, closing_day, slack_api, stub_workers, monkeypatch):
    from workers.handlers import statements as handler

    def broken(chart):
        raise RuntimeError("the chart library fell over")

    monkeypatch.setattr(handler, "render_spend", broken)
    run_the_job(stub_workers)
    for user in (*ADMINS, BILLING):
        texts = [m for m in slack_api.channel_messages(dm(user)) if not m.files]
        assert len(texts) == 1 and "Statement for prod, February 2028" in texts[0].text
    assert [u.filename for u in slack_api.files] == ["statement-prod-2028-02.csv"] * len((*ADMINS, BILLING))
