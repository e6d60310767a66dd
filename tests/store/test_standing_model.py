"""A model-based test of what a gateway hears for every key, against a reference model written here.

Hypothesis runs random sequences of the store's real operations, by real roles — invite
(add) members, change roles, remove members, ask for keys and have them approved, revoke
keys, set budgets and the cap, ask for temporary budget raises and have them approved, pause
and resume projects, top up the pool, record usage (late and repeated events too), change
the allowlist, lease keys, extend them and let time pass (the clock announcing each lease's
end once, raises ending), roll into the next month and delete the workspace — and after
every step compares, for every key, `/v1/authz`'s decision
(status and reason) with what the reference model (``standing_reference.py``) says, and what is announced as paused with
what the model holds; it checks that role caps hold, that every change wrote exactly one
audit event of its own (and a refusal only its denial), that every raise that ended was
audited as ended once, and that the audit chain verifies.

The model knows nothing of Purser's code: it keeps the facts in plain dictionaries and
decides with the rules as the design states them (docs/design.md, "A key's standing").
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from store import audit, budgets, credits, keys, members, raises, workspace_deletion, workspaces
from store.authz import decide, load_key_state
from store.errors import DomainError
from store.models import ApiKey, AuditEvent, Member, Project, Workspace
from store.secrets import hash_secret
from store.types import MemberStatus, ProjectStatus, Role, WorkspaceStatus
from store.ingest import UsageIn, ingest_usage
from store.rollover import roll_over_periods
from tests import factories as f
from tests.store.standing_leases import LeaseRules
from tests.store.standing_raises import RaiseRules
from tests.store.standing_reference import CAPS, PROJECTS, USD, Model, ModelKey

START = datetime(2027, 5, 10, 12, 0, tzinfo=timezone.utc)
_slugs = itertools.count(1)


# -- the machine -----------------------------------------------------------------------------


class Standing(LeaseRules, RaiseRules, RuleBasedStateMachine):
    db = None  # set by the test
    #: with "openrouter", keys live at the OpenRouter fake, every action the store emits is
    #: carried out by the workers' own handlers after each step, and the fake's enabled flags
    #: are compared with the model too
    provider = "local"
    rt = None
    fake = None

    def __init__(self) -> None:
        super().__init__()
        self.clock = time_machine.travel(START, tick=False)
        self.clock.start()
        self.now = START
        self.ws = f.workspace(self.db, f"model-{next(_slugs)}", "development", provider=self.provider)
        self.admin = f.member(self.db, self.ws, Role.ADMIN)
        self.model = Model()
        self.model.roles[self.admin.slack_user_id] = Role.ADMIN
        for slug in PROJECTS:
            f.project(self.db, self.ws, slug)
        self.events = itertools.count(1)

    @initialize(
        role=st.sampled_from([Role.DEVELOPER, Role.BILLING, Role.VIEWER]),
        project=st.sampled_from(PROJECTS),
        cap=st.sampled_from([None, 10, 20]),
        pool=st.sampled_from([None, 5, 15]),
    )
    def where_the_seams_are(self, role, project, cap, pool):
        """Every run starts near the seams: a Developer holding a key, one more member, often a cap and a small pool."""
        self.add_member(Role.DEVELOPER)
        developer = next(u for u, r in self.model.roles.items() if r is Role.DEVELOPER)
        key_id, secret = self._make_key(developer, "first", project)
        self._remember(key_id, developer, project, secret)
        self.add_member(role)
        if cap is not None:
            self.set_cap(cap)
        if pool is not None:
            self.top_up(pool)

    def _make_key(self, owner: str, name: str, project: str, lease: int | None = None) -> tuple[int, str]:
        if self.provider == "local":
            return f.key(self.db, self.ws, f.Actor.slack(owner), name, project=project, lease_minutes=lease)
        req = self.db.run(keys.request_key, f.Actor.slack(owner), self.ws, name=name, project=project, lease_minutes=lease)
        self.carry_out()  # the workers make it at OpenRouter
        with self.db.session() as s:
            made = s.query(ApiKey).filter(ApiKey.request_id == req.id).one()
            return made.id, self.fake.secrets[made.provider_ref]

    def carry_out(self) -> None:
        """Play the workers: every due action of this workspace, through their own handlers, until none is left."""
        from store.models import Action
        from store.types import ActionStatus
        from workers.actors import HANDLERS
        from workers.perform import perform

        for _ in range(50):
            with self.db.session() as s:
                due = [(a.id, a.kind) for a in s.query(Action).filter(Action.workspace_id == self.ws, Action.status == ActionStatus.PENDING, Action.run_after <= self.now).order_by(Action.created_at)]
            if not due:
                return
            for action_id, kind in due:
                perform(HANDLERS[kind], action_id, self.rt)
        raise AssertionError("the workers never ran out of actions")

    def _remember(self, key_id: int, owner: str, project: str, secret: str) -> None:
        with self.db.session() as s:  # what the key was given: its role's preset limit and lifetime
            made = s.get(ApiKey, key_id)
            lease = made.expires_at - self.now if made.expires_at else None  # the clock stands still: made now
            self.model.keys[key_id] = ModelKey(owner, project, secret, made.limit_micros, made.expires_at, lease=lease)

    def teardown(self) -> None:
        self.clock.stop()

    def attempt(self, op, *args, audited: str | None = None, **kwargs) -> bool:
        """Run a store operation; a refusal of policy or input is a fine outcome, and changes nothing.

        Either way the audit log says so in the same transaction: a change leaves its event
        (``audited``, the first event it writes), a refusal of policy only its denial.
        """
        before = self._audit_count()
        try:
            self.db.run(op, *args, **kwargs)
        except DomainError:
            written = self._audit_since(before)
            assert all(outcome == "denied" for _, outcome in written), (op.__name__, written)
            return False
        written = self._audit_since(before)
        if audited is not None:  # exactly one event of its own, whatever else it set in motion
            assert written.count((audited, "ok")) == 1, (op.__name__, audited, written)
        return True

    def _audit_count(self) -> int:
        with self.db.session() as s:
            return s.query(AuditEvent).filter(AuditEvent.workspace_id == self.ws).count()

    def _audit_since(self, count: int) -> list[tuple[str, str]]:
        with self.db.session() as s:
            rows = s.query(AuditEvent.action, AuditEvent.outcome).filter(AuditEvent.workspace_id == self.ws).order_by(AuditEvent.seq).offset(count)
            return [(action, outcome) for action, outcome in rows]

    def member_id(self, user: str) -> int:
        return f.member_id(self.db, self.ws, f.Actor.slack(user))

    # -- rules ---------------------------------------------------------------------------

    @rule(role=st.sampled_from([Role.DEVELOPER, Role.DEVELOPER, Role.VIEWER, Role.BILLING, Role.ADMIN]))
    def add_member(self, role):
        user = f.user_id()
        if self.attempt(members.add_member, f.OPERATOR, self.ws, role=role, slack_user_id=user, audited="member.add"):
            self.model.roles[user] = role
        else:
            assert self.model.deleted or (role in CAPS and sum(r is role for r in self.model.roles.values()) >= CAPS[role])

    @precondition(lambda self: len(self.model.roles) > 1)
    @rule(data=st.data(), role=st.sampled_from(list(Role)))
    def change_role(self, data, role):
        user = data.draw(st.sampled_from(sorted(u for u in self.model.roles if u != self.admin.slack_user_id)))
        if self.attempt(members.change_role, self.admin, self.ws, self.member_id(user), role, audited="member.role"):
            self.model.roles[user] = role

    @precondition(lambda self: len(self.model.roles) > 1)
    @rule(data=st.data())
    def remove_member(self, data):
        user = data.draw(st.sampled_from(sorted(u for u in self.model.roles if u != self.admin.slack_user_id)))
        if self.attempt(members.remove_member, self.admin, self.ws, self.member_id(user), audited="member.remove"):
            del self.model.roles[user]
            for key in self.model.keys.values():
                if key.owner == user:
                    key.revoked = True  # removing a member revokes their keys

    @precondition(lambda self: any(r in (Role.ADMIN, Role.DEVELOPER) for r in self.model.roles.values()))
    @rule(data=st.data(), project=st.sampled_from(PROJECTS))
    def get_a_key(self, data, project):
        user = data.draw(st.sampled_from(sorted(u for u, r in self.model.roles.items() if r in (Role.ADMIN, Role.DEVELOPER))))
        try:
            key_id, secret = self._make_key(user, f"k{next(self.events)}", project)
        except DomainError:
            return
        self._remember(key_id, user, project, secret)

    @precondition(lambda self: any(not k.revoked for k in self.model.keys.values()))
    @rule(data=st.data())
    def revoke(self, data):
        key_id = data.draw(st.sampled_from(sorted(k for k, v in self.model.keys.items() if not v.revoked)))
        if self.attempt(keys.revoke_key, self.admin, key_id, audited="key.revoke"):
            self.model.keys[key_id].revoked = True

    @rule(project=st.sampled_from(PROJECTS), dollars=st.one_of(st.none(), st.integers(1, 40)))
    def set_budget(self, project, dollars):
        budget = None if dollars is None else dollars * USD
        if self.attempt(budgets.set_project_budget, self.admin, self.ws, project, budget, audited="budget.set"):
            self.model.budgets[project] = budget

    @rule(dollars=st.one_of(st.none(), st.integers(1, 60)))
    def set_cap(self, dollars):
        cap = None if dollars is None else dollars * USD
        if self.attempt(budgets.set_workspace_cap, self.admin, self.ws, cap, audited="cap.set"):
            self.model.cap = cap

    @rule(project=st.sampled_from(PROJECTS))
    def pause(self, project):
        if self.attempt(budgets.pause_project, self.admin, self.ws, project, "model says so", audited="project.pause"):
            self.model.manual.add(project)

    @rule(project=st.sampled_from(PROJECTS))
    def resume(self, project):
        if self.attempt(budgets.resume_project, self.admin, self.ws, project, audited="project.resume"):
            self.model.manual.discard(project)

    @rule(dollars=st.integers(1, 20))
    def top_up(self, dollars):
        if self.attempt(credits.add_credit, self.admin, self.ws, dollars * USD, audited="credit.add"):
            self.model.funded, self.model.balance = True, self.model.balance + dollars * USD
        else:
            assert self.model.deleted

    @precondition(lambda self: bool(self.model.keys))
    @rule(data=st.data(), cents=st.integers(0, 2_500) | st.sampled_from([500, 600, 1_000]), late=st.booleans(), repeat=st.booleans())
    def spend(self, data, cents, late, repeat):
        key_id = data.draw(st.sampled_from(sorted(self.model.keys)))
        key = self.model.keys[key_id]
        if repeat and self.model.seen:
            external_id = data.draw(st.sampled_from(sorted(self.model.seen)))
        else:
            external_id = f"ev-{next(self.events)}"
        at = self.now - timedelta(days=40) if late else self.now
        amount = cents * USD // 100
        result = self.db.run(ingest_usage, [UsageIn(external_id, key_id, amount, at)])
        fresh = external_id not in self.model.seen
        assert result.verdicts == [("accepted" if fresh else "duplicate", None)]
        if fresh:
            self.model.seen.add(external_id)
            month = f"{at:%Y-%m}"
            for what in (key.project, "*", str(key_id)):
                self.model.spend[(what, month)] = self.model.spend.get((what, month), 0) + amount
            if self.model.funded:
                self.model.balance -= amount

    @rule(on=st.booleans())
    def allowlist(self, on):
        op = workspaces.add_allowlist if on else workspaces.remove_allowlist
        if self.attempt(op, self.admin, self.ws, "203.0.113.0/24", audited="workspace.allowlist_add" if on else "workspace.allowlist_remove"):
            self.model.allowlist = on

    def _spend_past_the_cap_and_the_pool(self, key_id: int) -> None:
        self._spend_exactly(key_id, max(self.model.cap - self.model.spent("*", f"{self.now:%Y-%m}"), self.model.balance, 0) + USD)

    # The seams of holes 2 and 3, a step each: a workspace held by both its cap and its pool
    # gets a top-up (the cap still holds), or a new period (the pool still holds).

    @precondition(lambda self: self.model.cap is not None and self.model.funded and bool(self.model.keys))
    @rule(data=st.data(), dollars=st.integers(1, 200))
    def spend_past_the_cap_and_the_pool_then_top_up(self, data, dollars):
        self._spend_past_the_cap_and_the_pool(data.draw(st.sampled_from(sorted(self.model.keys))))
        self.top_up(dollars)

    @precondition(lambda self: self.model.cap is not None and self.model.funded and bool(self.model.keys))
    @rule(data=st.data())
    def spend_past_the_cap_and_the_pool_then_roll_over(self, data):
        self._spend_past_the_cap_and_the_pool(data.draw(st.sampled_from(sorted(self.model.keys))))
        self.next_month()

    @precondition(lambda self: len(self.model.seen) >= 3 and not self.model.deleted)
    @rule()
    def delete_the_workspace(self):
        """Late in a run: every key is revoked with it; usage still arriving is still recorded."""
        if self.attempt(workspace_deletion.delete_workspace, self.admin, self.ws, confirm=self.ws_slug(), audited="workspace.delete"):
            self.model.deleted = True
            for key in self.model.keys.values():
                key.revoked = True

    def ws_slug(self) -> str:
        with self.db.session() as s:
            return s.get(Workspace, self.ws).slug

    @rule()
    def next_month(self):
        self._move_to((self.now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=5))

    def _move_to(self, when: datetime) -> None:
        self.now = when
        self.clock.stop()
        self.clock = time_machine.travel(self.now, tick=False)
        self.clock.start()
        self.db.run(roll_over_periods)
        self.db.run(raises.end_raises)

    # -- what must hold after every step ---------------------------------------------------

    @invariant()
    def every_key_is_heard_as_the_model_says(self):
        with self.db.session() as s:
            for key_id, key in self.model.keys.items():
                state = load_key_state(s, hash_secret(key.secret))
                for client in ("203.0.113.9", "198.51.100.1"):
                    decision = decide(state, client, None)
                    assert (decision.status, decision.reason) == self.model.hears(key_id, self.now, client), (key_id, client, key, self.model)

    @invariant()
    def what_is_announced_as_paused_is_what_the_model_holds(self):
        """The flags people read (alerts, `/ai-budget show`, resume announcements) follow the facts too:
        a rollover or a top-up that lifted one hold while another still stands would show here."""
        with self.db.session() as s:
            ws = s.get(Workspace, self.ws)
            if ws.status is WorkspaceStatus.DELETED:
                assert self.model.deleted
                return
            announced = ws.paused_reason if ws.status is WorkspaceStatus.PAUSED else None
            assert announced == self.model.workspace_hold(self.now), (announced, self.model)
            for proj in s.query(Project).filter(Project.workspace_id == self.ws):
                assert (proj.status is ProjectStatus.PAUSED) == self.model.project_paused(proj.slug, self.now), (proj.slug, self.model)

    @invariant()
    def openrouter_enables_what_the_model_allows(self):
        """The provider side of the same rules: a key OpenRouter lets spend is one the model allows
        (its own limit and the caller's address are OpenRouter's and the gateway's to enforce)."""
        if self.provider != "openrouter":
            return
        self.carry_out()
        with self.db.session() as s:
            refs = {k.id: k.provider_ref for k in s.query(ApiKey).filter(ApiKey.workspace_id == self.ws)}
        for key_id, key in self.model.keys.items():
            at_openrouter = self.fake.keys.get(refs[key_id])
            status, reason = self.model.hears(key_id, self.now, "203.0.113.9")
            if key.revoked:
                assert at_openrouter is None, (key_id, "revoked in Purser, still at OpenRouter")
            elif reason != "expired":  # expiry is OpenRouter's own (expires_at), checked by the clock job
                assert at_openrouter is not None and at_openrouter["disabled"] == (reason not in ("ok", "key_limit")), (key_id, reason, at_openrouter, self.model)

    @invariant()
    def every_raise_that_ended_was_audited_as_ended_once(self):
        with self.db.session() as s:
            ended = s.query(AuditEvent).filter(AuditEvent.workspace_id == self.ws, AuditEvent.action == "budget.raise_end", AuditEvent.outcome == "ok").count()
        assert ended == sum(1 for _, _, ends in self.model.raises if ends <= self.now), (ended, self.model.raises)

    @invariant()
    def role_caps_hold_and_the_chain_verifies(self):
        with self.db.session() as s:
            for role, cap in CAPS.items():
                held = s.query(Member).filter(Member.workspace_id == self.ws, Member.role == role, Member.status == MemberStatus.ACTIVE).count()
                assert held <= cap
            assert audit.verify_chain(s, self.ws).ok


def test_what_a_gateway_hears_follows_the_model(db):
    Standing.db, Standing.provider = db, "local"
    run_state_machine_as_test(
        Standing,
        settings=settings(max_examples=15, stateful_step_count=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)),
    )


def test_what_openrouter_enables_follows_the_model(db, openrouter):
    from workers.providers.openrouter import OpenRouterProvider
    from workers.runtime import Runtime

    Standing.db, Standing.provider, Standing.fake = db, "openrouter", openrouter
    Standing.rt = Runtime(db=db, slack=None, providers={"openrouter": OpenRouterProvider(openrouter.management_key, openrouter.url + "/api/v1")})
    try:
        run_state_machine_as_test(
            Standing,
            settings=settings(max_examples=8, stateful_step_count=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)),
        )
    finally:
        Standing.provider = "local"


@pytest.mark.slow
def test_what_a_gateway_hears_follows_the_model_long(db):
    Standing.db = db
    run_state_machine_as_test(Standing, settings=settings(max_examples=300, stateful_step_count=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)))
