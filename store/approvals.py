"""A workspace's approval policy (show, set, reset) and the approvals given on a request.

The rules themselves, and the words for them, are store.approval_rules. store.requests asks
``rule_for`` when it opens a request and keeps what the rule needs on it; store.decisions
records each approval through ``record_approval``, under the request's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store import audit
from store.approval_rules import (
    DEFAULTS,
    Facts,
    Rule,
    first_match,
    needs_of,
    needs_words,
    parse_rules,
    still_needed,
)
from store.errors import LIST_PROJECTS, Conflict, NotFound
from store.models import Member, Project, Request, Workspace
from store.models_policy import ApprovalRule, RequestApproval
from store.permissions import Actor, Permission, authorize, load_workspace
from store.types import Role

#: a rule's fields and the columns of its row (``needs`` aside: its roles are enum members in the rule, strings in the row)
_COLUMNS = {"kind": "kind", "over": "over_micros", "under": "under_micros", "project": "project", "by": "requester_role", "within_preset": "within_preset"}


def own_rules(s: Session, workspace_id: int) -> list[Rule]:
    rows = s.scalars(select(ApprovalRule).where(ApprovalRule.workspace_id == workspace_id).order_by(ApprovalRule.position))
    return [
        Rule(**{field: getattr(r, column) for field, column in _COLUMNS.items()}, needs=tuple((Role(role), int(n)) for role, n in r.needs.items()))
        for r in rows
    ]


def rule_for(s: Session, ws: Workspace, facts: Facts) -> Rule:
    """The rule that decides a request: the workspace's own rules first, then its key policy's defaults."""
    return first_match([*own_rules(s, ws.id), *DEFAULTS[ws.key_policy]], facts)


@dataclass(frozen=True)
class PolicyView:
    workspace: str
    key_policy: str
    own: tuple[str, ...]  # the workspace's own rules, in the order they are tried
    defaults: tuple[str, ...]  # then these, its key policy's


def describe_policy(s: Session, ws: Workspace) -> PolicyView:
    return PolicyView(ws.slug, ws.key_policy.value, tuple(r.text() for r in own_rules(s, ws.id)), tuple(r.text() for r in DEFAULTS[ws.key_policy]))


def show_policy(s: Session, actor: Actor, workspace_id: int) -> PolicyView:
    """Any member may read who approves what: a Developer should know before asking."""
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="policy.show")
    return describe_policy(s, ws)


def set_policy(s: Session, actor: Actor, workspace_id: int, text: str) -> PolicyView:
    """Replace the workspace's own rules with those written in ``text`` (store.approval_rules.parse_rules).

    Requests already waiting keep what they were opened with; the change is audited with
    the rules before and after.
    """
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.SET_APPROVAL_POLICY, resource=f"workspace:{ws.slug}", attempted="policy.change")
    rules = parse_rules(text)
    named = {r.project for r in rules if r.project}
    known = set(s.scalars(select(Project.slug).where(Project.workspace_id == ws.id, Project.slug.in_(named)))) if named else set()
    for missing in sorted(named - known):
        raise NotFound(f"`{ws.slug}` has no project called `{missing}`, so no rule can match it.", see=LIST_PROJECTS)
    return _replace(s, actor, ws, rules)


def reset_policy(s: Session, actor: Actor, workspace_id: int) -> PolicyView:
    """Back to the defaults of the workspace's key policy."""
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.SET_APPROVAL_POLICY, resource=f"workspace:{ws.slug}", attempted="policy.change")
    return _replace(s, actor, ws, [])


def _replace(s: Session, actor: Actor, ws: Workspace, rules: list[Rule]) -> PolicyView:
    before = [r.text() for r in own_rules(s, ws.id)]
    s.execute(delete(ApprovalRule).where(ApprovalRule.workspace_id == ws.id))
    for position, rule in enumerate(rules, 1):
        columns = {column: getattr(rule, field) for field, column in _COLUMNS.items()}
        s.add(ApprovalRule(workspace_id=ws.id, position=position, **columns, needs={role.value: n for role, n in rule.needs}, set_by=actor.label[:80]))
    after = [r.text() for r in rules]
    audit.record(
        s,
        workspace_id=ws.id,
        actor=actor.label,
        action="policy.change",
        resource=f"workspace:{ws.slug}",
        details={"from": before, "to": after, "then": ws.key_policy.value},
    )
    s.flush()
    return PolicyView(ws.slug, ws.key_policy.value, tuple(after), tuple(r.text() for r in DEFAULTS[ws.key_policy]))


def given(s: Session, request_id: int) -> list[tuple[int, Role, str | None]]:
    """The approvals recorded on a request, oldest first: (member id, role then held, Slack user id)."""
    rows = s.execute(
        select(RequestApproval.member_id, RequestApproval.role, Member.slack_user_id)
        .join(Member, Member.id == RequestApproval.member_id)
        .where(RequestApproval.request_id == request_id)
        .order_by(RequestApproval.id)
    )
    return [(member_id, role, slack_id) for member_id, role, slack_id in rows]


def record_approval(s: Session, req: Request, approver: Member) -> dict[Role, int]:
    """Record ``approver``'s approval of ``req`` (its row locked by the caller); returns who is still needed.

    Refuses a second approval by the same person, and an approval of a role whose share is
    already given (the request waits for another role): neither would move it on.
    """
    needs = needs_of(req.approval_needs)
    if sum(needs.values()) == 1:
        # The first approval decides it, so none can have been recorded: nothing to read.
        s.add(RequestApproval(request_id=req.id, member_id=approver.id, role=approver.role))
        return {}
    before = given(s, req.id)
    waiting = still_needed(needs, [role for _, role, _ in before])
    if any(member_id == approver.id for member_id, _, _ in before):
        raise Conflict(f"You already approved request #{req.id}; each approver counts once. It still needs {needs_words(waiting)}.")
    if approver.role not in waiting:
        raise Conflict(f"Request #{req.id} has all the {approver.role.title} approvals it needs; it still needs {needs_words(waiting)}.")
    s.add(RequestApproval(request_id=req.id, member_id=approver.id, role=approver.role))
    return still_needed(needs, [role for _, role, _ in before] + [approver.role])
