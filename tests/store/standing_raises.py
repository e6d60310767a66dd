"""The rules of tests/store/test_standing_model.py's machine for temporary budget raises, in a module of their own.

A Developer asks for a raise and the Admin approves it; the reference model
(``standing_reference.py``) then counts it on top of the budget until its end. The seam
rule puts a project held by its budget, raised, and spending past its budget as set one
step away; ``hours_pass`` and the machine's ``next_month`` end the raises.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from store import raises
from store.decisions import decide_request
from store.ingest import UsageIn, ingest_usage
from store.types import Role
from tests import factories as f
from tests.store.standing_reference import PROJECTS, USD


class RaiseRules:
    """Mixed into the machine, which has ``db``, ``ws``, ``admin``, ``model``, ``now``, ``events``, ``attempt``, ``set_budget`` and ``_move_to``."""

    @precondition(lambda self: any(r is Role.DEVELOPER for r in self.model.roles.values()))
    @rule(data=st.data(), project=st.sampled_from(PROJECTS), dollars=st.integers(1, 20), hours=st.sampled_from([1, 5, 24, 72, 20 * 24]))
    def raise_budget_for_a_while(self, data, project, dollars, hours):
        """A Developer asks for a temporary raise and the Admin approves it: it counts from now until ``hours`` from now."""
        user = data.draw(st.sampled_from(sorted(u for u, r in self.model.roles.items() if r is Role.DEVELOPER)))
        asked: list[int] = []

        def ask(s):
            asked[:] = [raises.request_budget_raise(s, f.Actor.slack(user), self.ws, project, dollars * USD, hours, reason="model run").id]

        if not self.attempt(ask, audited="request.open"):
            assert self.model.deleted or self.model.budgets[project] is None
            return
        if self.attempt(decide_request, self.admin, asked[0], approve=True, audited="budget.raise"):
            self.model.raises.append((project, dollars * USD, self.now + timedelta(hours=hours)))
        else:  # only the cap refuses an approval: budgets and raises would not fit in it
            assert self.model.cap is not None

    # The seam of a temporary raise, a step away: a project held by its budget is raised, and
    # spends on past its budget as set; hours_pass and next_month then end the raise.

    @precondition(lambda self: any(r is Role.DEVELOPER for r in self.model.roles.values()) and bool(self.model.keys))
    @rule(data=st.data(), hours=st.sampled_from([1, 24, 72]))
    def spend_a_budget_then_raise_it(self, data, hours):
        key_id = data.draw(st.sampled_from(sorted(self.model.keys)))
        project = self.model.keys[key_id].project
        if self.model.budgets[project] is None:
            self.set_budget(project, 5)
        self._spend_to_the_limit(key_id)
        self.raise_budget_for_a_while(data, project, 3, hours)
        self._spend_exactly(key_id, USD)  # past the budget as set, within the raise

    def _spend_to_the_limit(self, key_id: int) -> None:
        limit = self.model.limit(self.model.keys[key_id].project, self.now)
        if limit is not None:
            self._spend_exactly(key_id, max(limit - self.model.spent(self.model.keys[key_id].project, f"{self.now:%Y-%m}"), 0))

    def _spend_exactly(self, key_id: int, amount: int) -> None:
        month, external_id = f"{self.now:%Y-%m}", f"ev-{next(self.events)}"
        self.db.run(ingest_usage, [UsageIn(external_id, key_id, amount, self.now)])
        self.model.seen.add(external_id)
        for what in (self.model.keys[key_id].project, "*", str(key_id)):
            self.model.spend[(what, month)] = self.model.spend.get((what, month), 0) + amount
        if self.model.funded:
            self.model.balance -= amount

    @rule(hours=st.sampled_from([1, 4, 23, 49, 100]))
    def hours_pass(self, hours):
        """The clock's jobs as time passes: raises that ended are noticed, and a new period (if one began) rolls over."""
        self._move_to(self.now + timedelta(hours=hours))
