"""The model policy through the store's operations: who may change it, what each change audits and tells the provider, asking for a model."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from store import policy
from store.decisions import decide_request
from store.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from store.models import Action, AuditEvent, Project, Request, Workspace
from store.policy import ModelPolicy
from store.types import RequestState, Role
from tests import factories as f


@pytest.fixture
def shop(db):
    """A production workspace with an Admin, a Developer, a Viewer and projects `search` and `chat`."""
    ws = f.workspace(db, "shop", "production")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    viewer = f.member(db, ws, Role.VIEWER)
    search, chat = f.project(db, ws, "search"), f.project(db, ws, "chat")
    return ws, admin, dev, viewer, search, chat


def events(db, action_prefix: str = "model_policy.") -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action.startswith(action_prefix)).order_by(AuditEvent.seq)))


def applied(db) -> list[dict]:
    """The APPLY_MODEL_POLICY actions emitted so far, oldest first."""
    with db.session() as s:
        return [a.payload for a in s.scalars(select(Action).where(Action.kind == "apply_model_policy").order_by(Action.created_at, Action.id))]


def stored(db, ws: int, project: str | None = None):
    with db.session() as s:
        if project is None:
            return s.get(Workspace, ws).model_policy
        return s.scalars(select(Project.model_policy).where(Project.workspace_id == ws, Project.slug == project)).one()


def test_an_admins_change_to_the_workspace_is_audited_and_sent_for_every_project_that_follows_it(db, shop):
    ws, admin, dev, viewer, search, chat = shop
    db.run(policy.set_zdr, admin, ws, True, project="chat")  # chat has its own policy from here on
    before = len(applied(db))
    change = db.run(policy.set_models, admin, ws, ["OpenAI/*", "anthropic/claude-3.5-sonnet", "openai/*"])
    assert change.policy == ModelPolicy(models=("openai/*", "anthropic/claude-3.5-sonnet"))  # lower-cased, each once
    assert stored(db, ws) == {"models": ["openai/*", "anthropic/claude-3.5-sonnet"], "zdr": False}
    event = events(db)[-1]
    assert (event.action, event.resource, event.actor, event.outcome) == ("model_policy.models", "workspace:shop", admin.label, "ok")
    assert event.details == {"from": {}, "to": {"models": ["openai/*", "anthropic/claude-3.5-sonnet"], "zdr": False}}
    # search follows the workspace, keys without a project too; chat keeps its own and hears nothing
    assert applied(db)[before:] == [{"workspace_id": ws, "project_id": search}, {"workspace_id": ws, "project_id": None}]


def test_a_project_starts_from_the_workspaces_policy_and_reset_makes_it_follow_again(db, shop):
    ws, admin, dev, viewer, search, chat = shop
    db.run(policy.set_zdr, admin, ws, True)
    change = db.run(policy.set_providers, admin, ws, ["openai"], project="search")
    assert change.policy == ModelPolicy(providers=("openai",), zdr=True)  # the workspace's ZDR is kept
    assert stored(db, ws, "search") == {"providers": ["openai"], "zdr": True}
    assert applied(db)[-1] == {"workspace_id": ws, "project_id": search}
    shown = db.run(policy.show, dev, ws)
    assert shown.own == (("search", ModelPolicy(providers=("openai",), zdr=True)),)
    assert db.run(policy.show, dev, ws, "chat").follows is True
    before = len(applied(db))
    back = db.run(policy.reset, admin, ws, "search")
    assert back.follows and back.policy == ModelPolicy(zdr=True)
    assert stored(db, ws, "search") is None
    assert applied(db)[before:] == [{"workspace_id": ws, "project_id": search}]
    assert [e.action for e in events(db)] == ["model_policy.zdr", "model_policy.providers", "model_policy.reset"]
    with pytest.raises(Conflict, match="already follows"):
        db.run(policy.reset, admin, ws, "search")


def test_a_change_that_changes_nothing_is_refused_and_writes_nothing(db, shop):
    ws, admin, *_ = shop
    db.run(policy.set_models, admin, ws, ["openai/*"])
    counted = len(events(db)), len(applied(db))
    with pytest.raises(Conflict, match="nothing changed"):
        db.run(policy.set_models, admin, ws, ["openai/*"])
    with pytest.raises(Conflict, match="nothing changed"):
        db.run(policy.set_zdr, admin, ws, False)
    assert (len(events(db)), len(applied(db))) == counted


@pytest.mark.parametrize(
    "typed,said",
    [
        ("GPT 4o", "is not a model id. Write it as author/name"),
        ("gpt-4o", "names no author: write the model as author/name, like openai/gpt-4o — did you mean openai/gpt-4o?"),
        ("openai/", "is not a model id"),
        ("openai/gpt*", "is not a model id"),
        ("/gpt-4o", "is not a model id"),
        ("openai/gpt-4o<script>", "is not a model id"),
        ("openai/" + "x" * 200, "is not a model id"),
    ],
)
def test_a_model_id_of_the_wrong_shape_is_refused_in_plain_words(db, shop, typed, said):
    ws, admin, *_ = shop
    with pytest.raises(InvalidInput, match=said.replace("?", r"\?")):
        db.run(policy.set_models, admin, ws, [typed])
    assert events(db) == []


def test_a_project_that_does_not_exist_is_named_and_nothing_changes(db, shop):
    ws, admin, *_ = shop
    with pytest.raises(NotFound, match="`shop` has no project called `nowhere`") as refused:
        db.run(policy.set_zdr, admin, ws, True, project="nowhere")
    assert refused.value.see == "list_projects"
    assert events(db) == [] and stored(db, ws) == {}


def test_a_developer_cannot_change_the_policy_and_the_denial_is_audited(db, shop):
    ws, admin, dev, *_ = shop
    with pytest.raises(PermissionDenied, match=r"Only an Admin can change which models the workspace's keys may call; you are a Developer\. You can ask"):
        db.run(policy.set_models, dev, ws, ["openai/*"])
    [denied] = events(db)
    assert (denied.outcome, denied.action, denied.actor) == ("denied", "model_policy.models", dev.label)
    assert stored(db, ws) == {} and applied(db) == []


def test_an_approved_model_request_adds_the_model_to_the_projects_policy(db, shop):
    ws, admin, dev, viewer, search, chat = shop
    db.run(policy.set_models, admin, ws, ["openai/*"])
    req = db.run(policy.request_model, dev, ws, "Anthropic/Claude-3.5-Sonnet", project="search", reason="evaluations")
    assert (req.state, req.payload) == (RequestState.PENDING, {"model": "anthropic/claude-3.5-sonnet", "project_id": search, "project": "search"})
    with pytest.raises(Conflict, match=r"already asked for `anthropic/claude-3.5-sonnet` in project `search` \(request #"):
        db.run(policy.request_model, dev, ws, "anthropic/claude-3.5-sonnet", project="search", reason="again")
    before = len(applied(db))
    db.run(decide_request, admin, req.id, approve=True)
    assert stored(db, ws, "search") == {"models": ["openai/*", "anthropic/claude-3.5-sonnet"], "zdr": False}
    assert stored(db, ws) == {"models": ["openai/*"], "zdr": False}  # the workspace's own policy is as it was
    assert applied(db)[before:] == [{"workspace_id": ws, "project_id": search}]
    event = events(db)[-1]
    assert (event.action, event.resource, event.actor, event.details["request"]) == ("model_policy.models", "project:search", admin.label, req.id)
    # now allowed, so asking again is refused with what to do instead
    with pytest.raises(Conflict, match="already allowed in project `search`: use it"):
        db.run(policy.request_model, dev, ws, "anthropic/claude-3.5-sonnet", project="search", reason="more")


def test_a_denied_model_request_changes_no_policy(db, shop):
    ws, admin, dev, *_ = shop
    db.run(policy.set_models, admin, ws, ["openai/*"])
    counted = len(applied(db))
    req = db.run(policy.request_model, dev, ws, "mistralai/mistral-large", reason="French")
    db.run(decide_request, admin, req.id, approve=False, note="not this quarter")
    with db.session() as s:
        assert s.get(Request, req.id).state is RequestState.DENIED
    assert stored(db, ws) == {"models": ["openai/*"], "zdr": False} and len(applied(db)) == counted


def test_a_model_already_allowed_cannot_be_asked_for(db, shop):
    ws, admin, dev, *_ = shop
    with pytest.raises(Conflict, match="`openai/gpt-4o` is already allowed in `shop`"):
        db.run(policy.request_model, dev, ws, "openai/gpt-4o", reason="any model is allowed")
    db.run(policy.set_models, admin, ws, ["openai/*"])
    with pytest.raises(Conflict, match="already allowed"):
        db.run(policy.request_model, dev, ws, "openai/*", reason="all of them")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 0


def test_a_viewer_cannot_ask_for_a_model_and_a_reason_is_required(db, shop):
    ws, admin, dev, viewer, *_ = shop
    db.run(policy.set_models, admin, ws, ["openai/*"])
    with pytest.raises(PermissionDenied, match="Only an Admin or Developer can ask for this; you are a Viewer"):
        db.run(policy.request_model, viewer, ws, "anthropic/claude-3.5-sonnet", reason="curious")
    with pytest.raises(InvalidInput, match="Say why you need it"):
        db.run(policy.request_model, dev, ws, "anthropic/claude-3.5-sonnet")
    assert [e.outcome for e in events(db, "request.")] == ["denied"]


def test_approving_a_model_of_a_provider_outside_the_list_allows_that_model_and_nothing_more(db, shop):
    ws, admin, dev, *_ = shop
    db.run(policy.set_providers, admin, ws, ["openai"])
    req = db.run(policy.request_model, dev, ws, "anthropic/claude-3.5-sonnet", reason="evaluations")
    db.run(decide_request, admin, req.id, approve=True)
    now = ModelPolicy.from_json(stored(db, ws))
    assert now == ModelPolicy(models=("openai/*", "anthropic/claude-3.5-sonnet"), providers=("openai", "anthropic"))
    assert policy.allows(now, "anthropic/claude-3.5-sonnet") and policy.allows(now, "openai/o3-mini")
    assert not policy.allows(now, "anthropic/claude-3-opus")
