"""The rules of tests/store/test_standing_model.py about leased keys: leasing one, extending it, and time passing.

A mixin of the machine there (``Standing``), kept apart so each module stays readable; it
uses the machine's own helpers (``attempt``, ``_make_key``, ``_remember``, ``clock``).
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from store import leases
from store.decisions import decide_request
from store.errors import DomainError
from store.models import AuditEvent
from store.rollover import roll_over_periods
from store.types import RequestState, Role
from tests import factories as f
from tests.store.standing_reference import PROJECTS


class LeaseRules:
    @precondition(lambda self: any(r in (Role.ADMIN, Role.DEVELOPER) for r in self.model.roles.values()))
    @rule(data=st.data(), project=st.sampled_from(PROJECTS), minutes=st.sampled_from([60, 90, 8 * 60, 2 * 1440]))
    def get_a_leased_key(self, data, project, minutes):
        user = data.draw(st.sampled_from(sorted(u for u, r in self.model.roles.items() if r in (Role.ADMIN, Role.DEVELOPER))))
        try:
            key_id, secret = self._make_key(user, f"k{next(self.events)}", project, lease=minutes)
        except DomainError:
            return
        self._remember(key_id, user, project, secret)

    @precondition(lambda self: self.provider == "local" and any(k.expires_at is not None for k in self.model.keys.values()))
    @rule(data=st.data())
    def extend(self, data):
        """The owner clicks Extend; where the key policy asks an Admin, the Admin approves."""
        key_id = data.draw(st.sampled_from(sorted(k for k, v in self.model.keys.items() if v.expires_at is not None)))
        key = self.model.keys[key_id]

        def ask_and_approve(s):
            req = leases.request_extension(s, f.Actor.slack(key.owner), key_id)
            if req.state is RequestState.PENDING:
                decide_request(s, self.admin, req.id, approve=True)

        allowed = self.model.may_extend(key_id, self.now)
        assert self.attempt(ask_and_approve, audited="key.extend") == allowed, (key_id, key, self.now)
        if allowed:
            key.expires_at += key.lease

    @rule(hours=st.sampled_from([1, 7, 23, 49]))
    def time_passes(self, hours):
        """The clock's lease job runs after the time: each ended key's end is audited once (key.expire)."""
        before = self.now
        self._move_to(self.now + timedelta(hours=hours))
        if f"{self.now:%Y-%m}" != f"{before:%Y-%m}":
            self.db.run(roll_over_periods)
        due = self.model.ends_to_tell(self.now)
        count = self._audit_count()
        self.db.run(leases.announce_leases)
        with self.db.session() as s:
            events = s.query(AuditEvent.action, AuditEvent.resource).filter(AuditEvent.workspace_id == self.ws).order_by(AuditEvent.seq).offset(count).all()
        assert sorted(events) == sorted(("key.expire", f"key:{k}") for k in due), (due, events)
        for key_id in due:
            self.model.keys[key_id].end_told = True
