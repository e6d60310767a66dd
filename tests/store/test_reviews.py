"""Access reviews in the store: opening one, Keep / Revoke / Transfer, closing, reminders, and the quarters."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from store import keys, members, reviews
from store.errors import Conflict, InvalidInput, LimitReached, PermissionDenied
from store.models import Action, ApiKey, AuditEvent
from store.models_reviews import AccessReview, ReviewItem
from store.money import parse_money
from store.review_csv import review_csv
from store.review_views import ItemView, ReviewView, review_view
from store.types import Role, utcnow
from tests import factories as f

UTC = timezone.utc


def world(db):
    ws = f.workspace(db, "acme", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    other = f.member(db, ws, Role.DEVELOPER)
    viewer = f.member(db, ws, Role.VIEWER)
    service, _ = f.key(db, ws, dev, name="service")
    scratch, _ = f.key(db, ws, dev, name="scratch")
    return ws, admin, dev, other, viewer, service, scratch


def items(db, review_id) -> dict:
    with db.session() as s:
        rows = s.scalars(select(ReviewItem).where(ReviewItem.review_id == review_id).order_by(ReviewItem.id))
        return {(i.kind, i.key_id or i.member_id): i.id for i in rows}


def events(db, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def actions(db, kind: str) -> list[Action]:
    with db.session() as s:
        return list(s.scalars(select(Action).where(Action.kind == kind).order_by(Action.created_at)))


def test_a_review_lists_each_member_and_live_key_with_last_use_and_the_quarters_spend(db):
    ws, admin, dev, other, viewer, service, scratch = world(db)
    gone, _ = f.key(db, ws, other, name="gone")
    db.run(keys.revoke_key, admin, gone)
    now = utcnow()
    start = reviews.quarter_start(now)
    last_quarter = start - timedelta(days=3)
    f.spend(db, service, parse_money("$4"), at=last_quarter)  # used, but not this quarter
    f.spend(db, scratch, parse_money("$1.50"), at=start + timedelta(hours=1, minutes=10))
    f.spend(db, scratch, parse_money("$0.50"), at=now - timedelta(minutes=1))

    review = db.run(reviews.open_review, admin, ws)

    view = db.run(lambda s: review_view(s, review.id))
    by_key = {i.key_name: i for i in view.items if i.kind == "key"}
    assert set(by_key) == {"service", "scratch"}  # the revoked key is not reviewed
    assert by_key["service"].spend_micros == 0 and by_key["service"].last_used_at == last_quarter.replace(minute=0, second=0, microsecond=0)
    assert by_key["scratch"].spend_micros == parse_money("$2") and by_key["scratch"].last_used_at == (now - timedelta(minutes=1)).replace(minute=0, second=0, microsecond=0)
    people = {i.member: i for i in view.items if i.kind == "member"}
    assert set(people) == {m.slack_user_id for m in (admin, dev, other, viewer)}
    assert people[dev.slack_user_id].spend_micros == parse_money("$2") and people[other.slack_user_id].last_used_at is None
    [opened] = events(db, "review.open")
    assert opened.details["members"] == 4 and opened.details["keys"] == 2 and opened.actor == admin.label
    assert [a.payload for a in actions(db, "post_review")] == [{"review_id": review.id}]


def test_only_admins_review_and_one_on_demand_review_is_open_at_a_time(db):
    ws, admin, dev, *_ = world(db)
    with pytest.raises(PermissionDenied, match="Only an Admin can review who keeps access; you are a Developer"):
        db.run(reviews.open_review, dev, ws)
    assert [e.outcome for e in events(db, "review.open")] == ["denied"]
    review = db.run(reviews.open_review, admin, ws)
    with pytest.raises(Conflict, match=f"Review #{review.id} of `acme`.*still open with 6 item\\(s\\) undecided"):
        db.run(reviews.open_review, admin, ws)


def test_keep_revoke_and_transfer_each_commit_with_their_audit_and_the_last_closes_the_review(db):
    ws, admin, dev, other, viewer, service, scratch = world(db)
    review = db.run(reviews.open_review, admin, ws)
    ids = items(db, review.id)
    other_id, viewer_id = (f.member_id(db, ws, m) for m in (other, viewer))

    db.run(reviews.decide_item, admin, ids[("key", scratch)], "revoke")
    with db.session() as s:
        assert s.get(ApiKey, scratch).status.value == "revoked" and s.get(ApiKey, scratch).status_reason == f"access review #{review.id}"
    assert [e.resource for e in events(db, "key.revoke")] == [f"key:{scratch}"] and actions(db, "revoke_key")

    decided = db.run(reviews.decide_item, admin, ids[("key", service)], "transfer", to_member_id=other_id)
    with db.session() as s:
        assert s.get(ApiKey, service).member_id == other_id and s.get(ApiKey, service).status.value == "active"
    [moved] = events(db, "key.transfer")
    assert moved.details == {"name": "service", "from": dev.slack_user_id, "to": other.slack_user_id, "review": review.id}
    [told] = actions(db, "key_transferred")
    assert told.payload == {"key_id": service, "from": dev.slack_user_id, "to": other.slack_user_id, "by": admin.slack_user_id}
    assert not decided.closed

    for member in (admin, dev, other):
        db.run(reviews.decide_item, admin, ids[("member", f.member_id(db, ws, member))], "keep")
    last = db.run(reviews.decide_item, admin, ids[("member", viewer_id)], "revoke")  # removes the viewer
    assert last.closed
    assert [e.details["decision"] for e in events(db, "review.decide")] == ["revoke", "transfer", "keep", "keep", "keep", "revoke"]
    [done] = events(db, "review.complete")
    assert done.details == {"items": 6, "keep": 3, "revoke": 2, "transfer": 1, "settled_elsewhere": 0}
    assert [a.payload for a in actions(db, "review_complete")] == [{"review_id": review.id}]
    assert [e.resource for e in events(db, "member.remove")] == [f"member:{viewer.slack_user_id}"]
    rows = list(csv.DictReader(io.StringIO(db.run(lambda s: review_csv(review_view(s, review.id))))))
    assert [(r["kind"], r["key"], r["outcome"], r["transferred_to"]) for r in rows if r["kind"] == "key"] == [("key", "service", "transfer", other.slack_user_id), ("key", "scratch", "revoke", "")]


def test_refusals_say_what_went_wrong_and_change_nothing(db):
    ws, admin, dev, other, viewer, service, scratch = world(db)
    outsider_ws = f.workspace(db, "elsewhere")
    stranger = f.member(db, outsider_ws, Role.DEVELOPER)
    review = db.run(reviews.open_review, admin, ws)
    ids = items(db, review.id)

    with pytest.raises(PermissionDenied, match="Only an Admin can review who keeps access"):
        db.run(reviews.decide_item, dev, ids[("key", service)], "keep")
    with pytest.raises(InvalidInput, match="not an active member of `acme`"):
        db.run(reviews.decide_item, admin, ids[("key", service)], "transfer", to_member_id=f.member_id(db, outsider_ws, stranger))
    with pytest.raises(InvalidInput, match="The person you picked is not a member of `acme`"):
        db.run(reviews.transfer_to_user, admin, ids[("key", service)], stranger.slack_user_id)
    with pytest.raises(InvalidInput, match="a role without API keys"):
        db.run(reviews.decide_item, admin, ids[("key", service)], "transfer", to_member_id=f.member_id(db, ws, viewer))
    with pytest.raises(InvalidInput, match="Only a key can be handed"):
        db.run(reviews.decide_item, admin, ids[("member", f.member_id(db, ws, dev))], "transfer", to_member_id=f.member_id(db, ws, other))
    with pytest.raises(LimitReached, match="must keep at least one Admin"):
        db.run(reviews.decide_item, admin, ids[("member", f.member_id(db, ws, admin))], "revoke")
    dev_id = f.member_id(db, ws, dev)
    with db.session() as s:
        assert s.get(ApiKey, service).member_id == dev_id
        assert s.scalars(select(ReviewItem.decision).where(ReviewItem.review_id == review.id)).all() == [None] * 6

    db.run(reviews.decide_item, admin, ids[("key", service)], "keep")
    with pytest.raises(Conflict) as twice:
        db.run(reviews.decide_item, admin, ids[("key", service)], "revoke")
    assert (twice.value.state, twice.value.decided_by) == ("keep", admin.slack_user_id)
    db.run(keys.revoke_key, dev, scratch)  # its owner revoked it meanwhile
    with pytest.raises(Conflict, match="That key was revoked outside the review .*nothing is left to decide"):
        db.run(reviews.decide_item, admin, ids[("key", scratch)], "keep")
    assert events(db, "key.transfer") == []


def test_a_member_removed_before_their_key_is_transferred_takes_it_with_them_so_transfer_comes_first(db):
    ws, admin, dev, other, viewer, service, scratch = world(db)
    review = db.run(reviews.open_review, admin, ws)
    ids = items(db, review.id)
    db.run(reviews.decide_item, admin, ids[("key", service)], "transfer", to_member_id=f.member_id(db, ws, other))
    db.run(reviews.decide_item, admin, ids[("member", f.member_id(db, ws, dev))], "revoke")
    with db.session() as s:
        assert s.get(ApiKey, service).status.value == "active"  # handed over first: it outlives its maker
        assert s.get(ApiKey, scratch).status.value == "revoked"  # removed with them
    with pytest.raises(Conflict, match="revoked outside the review \\(member removed\\)"):
        db.run(reviews.decide_item, admin, ids[("key", scratch)], "keep")


def test_reminders_go_once_a_day_from_the_day_after_opening_and_a_settled_review_closes(db, clock):
    ws, admin, dev, other, viewer, service, scratch = world(db)
    clock.move_to(datetime(2027, 5, 10, 23, 0, tzinfo=UTC))
    review = db.run(reviews.open_review, admin, ws)
    assert db.run(reviews.remind_reviews) == []  # not on the day it opened
    clock.move_to(datetime(2027, 5, 11, 0, 30, tzinfo=UTC))
    assert db.run(reviews.remind_reviews) == [review.id]
    assert db.run(reviews.remind_reviews) == []  # the same day again: nothing
    assert [a.payload for a in actions(db, "remind_review")] == [{"review_id": review.id, "day": "2027-05-11"}]
    assert [e.details for e in events(db, "review.remind")] == [{"undecided": 6}]
    clock.move_to(datetime(2027, 5, 12, 9, 0, tzinfo=UTC))
    ids = items(db, review.id)
    for kind, ref in ids:
        if (kind, ref) not in (("key", service), ("key", scratch)):
            db.run(reviews.decide_item, admin, ids[(kind, ref)], "keep")
    db.run(members.remove_member, admin, ws, f.member_id(db, ws, dev))  # their keys go outside the review
    assert db.run(reviews.remind_reviews) == []  # nothing left: closed rather than reminded
    [done] = events(db, "review.complete")
    assert done.details["settled_elsewhere"] == 2 and done.details["keep"] == 4
    assert len(actions(db, "remind_review")) == 1


@pytest.mark.parametrize(
    ("now", "label", "since", "until"),
    [
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-Q3", datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)),
        (datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC), "2026-Q4", datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2028, 2, 29, 12, 0, 0, tzinfo=UTC), "2027-Q4", datetime(2027, 10, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)),
        (datetime(2028, 4, 1, 0, 0, 0, tzinfo=UTC), "2028-Q1", datetime(2028, 1, 1, tzinfo=UTC), datetime(2028, 4, 1, tzinfo=UTC)),
    ],
)
def test_the_quarter_the_clocks_review_looks_back_at(now, label, since, until):
    assert reviews.reviewed_quarter(now) == (label, since, until)


def test_the_quarterly_review_opens_once_per_workspace_and_quarter_across_new_year(db, clock):
    clock.move_to(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    ws, admin, dev, other, viewer, service, scratch = world(db)
    clock.move_to(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    f.spend(db, service, parse_money("$3"), at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    assert db.run(reviews.due_quarterly) == ("2026-Q3", [])  # the workspace did not live through Q3
    clock.move_to(datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert db.run(reviews.due_quarterly) == ("2026-Q4", [ws])
    opened = db.run(reviews.open_review, reviews.Actor.operator("clock"), ws, quarterly=True)
    assert db.run(reviews.open_review, reviews.Actor.operator("clock"), ws, quarterly=True) is None
    assert db.run(reviews.due_quarterly) == ("2026-Q4", [])
    view = db.run(lambda s: review_view(s, opened.id))
    assert (view.quarter, view.since, view.until) == ("2026-Q4", datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert next(i for i in view.items if i.key_name == "service").spend_micros == parse_money("$3")  # the last half hour of the year counts
    with db.session() as s:
        assert s.scalar(select(AccessReview.opened_by).where(AccessReview.id == opened.id)) == "system:clock"


def test_the_csv_shows_names_as_text_never_as_formulas():
    when = datetime(2027, 1, 2, tzinfo=UTC)
    item = ItemView(1, "member", "=HYPERLINK(\"http://x\")", "Developer", None, None, None, 0, "keep", "@admin", when, None, None)
    view = ReviewView(1, 1, "acme", "2026-Q4", when, when, when, when, [item])
    [row] = list(csv.DictReader(io.StringIO(review_csv(view))))
    assert row["member"] == "'=HYPERLINK(\"http://x\")" and row["decided_by"] == "'@admin" and row["outcome"] == "keep"
