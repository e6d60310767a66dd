"""Where leases, extensions, transfers, revocations, role changes and reviews meet: a key's pending extension never outlives the reason it was asked for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from store import keys, leases, members, reviews
from store.decisions import decide_request
from store.errors import Conflict
from store.key_transfer import transfer_key
from store.models import Action, ApiKey, AuditEvent, Request
from store.models_reviews import ReviewItem
from store.secrets import mint_local_secret
from store.types import RequestState, Role
from tests import factories as f


def leased_key_with_extension(db):
    """A Developer's 8-hour key in production, its extension waiting for an Admin."""
    ws = f.workspace(db)
    admin, dev = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "temp", lease_minutes=8 * 60)
    req = db.run(leases.request_extension, dev, key_id)
    assert req.state is RequestState.PENDING
    return ws, admin, dev, key_id, req.id


def end_of(db, key_id):
    with db.session() as s:
        return s.get(ApiKey, key_id).expires_at


def cancelled(db, request_id) -> bool:
    with db.session() as s:
        req = s.get(Request, request_id)
        told = s.scalars(select(Action.kind).where(Action.request_id == request_id, Action.kind == "request_decided")).all()
        audited = s.scalars(select(AuditEvent.action).where(AuditEvent.resource == f"request:{request_id}", AuditEvent.action == "request.cancel")).all()
        return req.state is RequestState.CANCELLED and len(told) == 1 and len(audited) == 1


def test_a_handed_over_key_drops_its_old_owners_extension(db):
    ws, admin, _, key_id, req_id = leased_key_with_extension(db)
    other = f.member(db, ws, Role.DEVELOPER)
    end = end_of(db, key_id)
    db.run(transfer_key, admin, key_id, f.member_id(db, ws, other))
    assert cancelled(db, req_id)
    with pytest.raises(Conflict):
        db.run(decide_request, admin, req_id, approve=True)
    assert end_of(db, key_id) == end
    assert db.run(leases.request_extension, other, key_id).state is RequestState.PENDING  # the new owner may ask afresh


def test_a_revoked_key_drops_its_extension(db):
    _, admin, _, key_id, req_id = leased_key_with_extension(db)
    db.run(keys.revoke_key, admin, key_id)
    assert cancelled(db, req_id)


def test_a_role_without_keys_drops_the_members_extensions(db):
    ws, admin, dev, _, req_id = leased_key_with_extension(db)
    db.run(members.change_role, admin, ws, f.member_id(db, ws, dev), Role.VIEWER)
    assert cancelled(db, req_id)


def test_a_key_being_replaced_is_not_handed_over_apart_from_its_successor(db):
    ws = f.workspace(db)
    admin, dev, other = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.DEVELOPER), f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "svc")
    action = db.run(keys.rotate_key, admin, key_id)
    db.run(keys.complete_rotation, action.id, secret=mint_local_secret(), provider="local", provider_ref=None)
    with pytest.raises(Conflict, match="newer key"):
        db.run(transfer_key, admin, key_id, f.member_id(db, ws, other))


def test_a_review_leaves_out_keys_whose_lease_has_ended_and_counts_one_that_ends_meanwhile_as_settled(db, clock):
    ws = f.workspace(db)
    admin, dev = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.DEVELOPER)
    ended, _ = f.key(db, ws, dev, "ended", lease_minutes=60)
    ending, _ = f.key(db, ws, dev, "ending", lease_minutes=3 * 60)
    kept, _ = f.key(db, ws, dev, "kept")
    clock.shift(timedelta(hours=2))
    review = db.run(reviews.open_review, admin, ws)
    with db.session() as s:
        listed = set(s.scalars(select(ReviewItem.key_id).where(ReviewItem.review_id == review.id, ReviewItem.kind == "key")))
        assert listed == {ending, kept}
        clock.shift(timedelta(hours=2))
        item = s.scalars(select(ReviewItem).where(ReviewItem.review_id == review.id, ReviewItem.key_id == ending)).one()
        assert reviews.settled_elsewhere(s, item) == "its lease ended"
