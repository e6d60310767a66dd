"""Which models a workspace's keys may call: the model policy, how it is checked, and the operations that change it.

A policy is kept as JSON: on the workspace (``Workspace.model_policy``; ``{}`` allows every
model) and, for a project that has one of its own, on the project (``Project.model_policy``;
None follows the workspace). It says which models (``author/name``, or ``author/*`` for every
model of one author), which providers (the author part of a model id) and whether zero data
retention is required. A model must pass both lists.

Enforced by OpenRouter (a guardrail per project, set by the ``APPLY_MODEL_POLICY`` action
emitted here) for OpenRouter keys, and by ``/v1/authz`` (store.authz) for local keys when
the gateway names the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import LIST_PROJECTS, Conflict, InvalidInput, NotFound
from store.models import Project, Request, Workspace
from store.permissions import Actor, Permission, authorize, load_workspace
from store.requests import open_request, requester_member
from store.types import ActionKind, RequestKind, RequestState

_AUTHOR = r"[a-z0-9][a-z0-9._-]*"
#: ``author/name`` or ``author/*``; names may hold ``:`` (``:free``) and more slashes
MODEL_ID = re.compile(rf"^{_AUTHOR}/(?:\*|[a-z0-9][a-z0-9._:/-]*)$")
PROVIDER = re.compile(rf"^{_AUTHOR}$")
_BARE = re.compile(r"[a-z0-9][a-z0-9._:-]*")  # a model's name without its author, as gateways send it
MAX_ID = 120  # what a usage event's model column holds
MAX_ENTRIES = 100

#: Gateways in front of OpenAI-compatible upstreams send bare names (``gpt-4o``), and Purser's
#: price table is keyed by them; a policy speaks OpenRouter's ``author/name``. These prefixes
#: name the author of the well-known families, so ``gpt-4o`` is checked as ``openai/gpt-4o``.
_AUTHORS = (
    (re.compile(r"^(?:gpt-|chatgpt-|o[134](?:-|$))"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^(?:gemini-|gemma-)"), "google"),
    (re.compile(r"^(?:mistral-|mixtral-|codestral-|ministral-)"), "mistralai"),
    (re.compile(r"^llama-"), "meta-llama"),
    (re.compile(r"^deepseek-"), "deepseek"),
    (re.compile(r"^grok-"), "x-ai"),
    (re.compile(r"^command-"), "cohere"),
)


@dataclass(frozen=True)
class ModelPolicy:
    models: tuple[str, ...] | None = None  # None: any model
    providers: tuple[str, ...] | None = None  # None: any provider
    zdr: bool = False  # zero data retention required

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "ModelPolicy":
        data = data or {}
        models, providers = data.get("models"), data.get("providers")
        return cls(tuple(models) if models is not None else None, tuple(providers) if providers is not None else None, bool(data.get("zdr", False)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"zdr": self.zdr}
        if self.models is not None:
            out["models"] = list(self.models)
        if self.providers is not None:
            out["providers"] = list(self.providers)
        return out

    @property
    def restricts_models(self) -> bool:
        """Does it matter which model a call names? (ZDR alone cannot be checked from a model id.)"""
        return self.models is not None or self.providers is not None


OPEN = ModelPolicy()


def effective(ws: Workspace, project: Project | None) -> ModelPolicy:
    """The project's own policy when it has one, else the workspace's."""
    if project is not None and project.model_policy is not None:
        return ModelPolicy.from_json(project.model_policy)
    return ModelPolicy.from_json(ws.model_policy)


# -- model ids ----------------------------------------------------------------------------


def qualify(model_id: str) -> str:
    """A model id as a policy names it: lower case, and ``author/`` added to a well-known bare name."""
    model = model_id.strip().lower()
    if "/" not in model:
        for pattern, author in _AUTHORS:
            if pattern.match(model):
                return f"{author}/{model}"
    return model


def parse_model(text: str) -> str:
    """A model id as a person typed it, checked: ``author/name`` or ``author/*``."""
    model = (text or "").strip().lower()
    if MODEL_ID.fullmatch(model) and len(model) <= MAX_ID and not model.endswith("/"):
        return model
    shown = (text or "").strip()[:60]
    if _BARE.fullmatch(model) and len(model) <= MAX_ID:  # a fine name, but whose?
        guess = qualify(model)
        hint = f" — did you mean {guess}?" if guess != model else ""
        raise InvalidInput(f"“{shown}” names no author: write the model as author/name, like openai/gpt-4o{hint}")
    raise InvalidInput(
        f"“{shown}” is not a model id. Write it as author/name (letters, digits and . _ : - only), like openai/gpt-4o, "
        "or author/* for every model of one author."
    )


def parse_provider(text: str) -> str:
    provider = (text or "").strip().lower()
    if PROVIDER.fullmatch(provider) and len(provider) <= 60:
        return provider
    raise InvalidInput(f"“{(text or '').strip()[:60]}” is not a provider. Name it as model ids begin, like openai or anthropic.")


def _entries(values: Iterable[str], parse, what: str) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(parse(v) for v in values))  # in the order given, each once
    if not out:
        raise InvalidInput(f"Name at least one {what}; to allow every {what}, clear the list instead.")
    if len(out) > MAX_ENTRIES:
        raise InvalidInput(f"A policy lists at most {MAX_ENTRIES} {what}s; use author/* to allow one author's models at once.")
    return out


# -- checking a call ----------------------------------------------------------------------


def refusal(policy: ModelPolicy, model_id: str, *, zdr_capable: bool | None = None) -> str | None:
    """Why this policy refuses the model, in a few plain words; None when it allows it.

    ``zdr_capable`` None means not known: zero data retention is then left to the provider
    (OpenRouter's guardrail enforces it), not refused here.
    """
    model = qualify(model_id)
    author, slash, name = model.partition("/")
    if (slash and not MODEL_ID.fullmatch(model)) or name == "*" or not _BARE.fullmatch(author) or len(model) > MAX_ID:
        # Whatever the call named, it is no model id: a policy that lists anything cannot be sure it allows it.
        return "that is not a model id (author/name)" if policy.restricts_models else None
    if policy.providers is not None and (not slash or author not in policy.providers):
        return f"only models by {', '.join(policy.providers)} are allowed" if policy.providers else "no provider is allowed"
    if policy.models is not None and not _listed(policy.models, model, author if slash else None):
        return "it is not on the list of allowed models"
    if policy.zdr and zdr_capable is False:
        return "zero data retention is required and this model does not offer it"
    return None


def allows(policy: ModelPolicy, model_id: str, *, zdr_capable: bool | None = None) -> bool:
    return refusal(policy, model_id, zdr_capable=zdr_capable) is None


def _listed(models: tuple[str, ...], model: str, author: str | None) -> bool:
    if model in models or (author is not None and f"{author}/*" in models):
        return True
    # A bare name no author is known for: allowed by an entry of that exact name.
    return author is None and any(entry.partition("/")[2] == model for entry in models)


def covers(policy: ModelPolicy, wanted: str) -> bool:
    """Is what someone asks for (a model, or ``author/*``) allowed already?"""
    author, _, name = wanted.partition("/")
    if name != "*":
        return allows(policy, wanted)
    return (policy.providers is None or author in policy.providers) and (policy.models is None or wanted in policy.models)


def with_model(policy: ModelPolicy, model: str) -> ModelPolicy:
    """The policy that allows ``model`` too, and nothing else besides."""
    author = model.partition("/")[0]
    models, providers = policy.models, policy.providers
    if providers is not None and author not in providers:
        if models is None:
            # "any model of these providers" said as a list, so that adding the provider
            # does not also allow every other model of it
            models = tuple(f"{p}/*" for p in providers)
        else:
            # entries of that author allowed nothing while it was not a provider; kept, they would now
            models = tuple(entry for entry in models if entry.partition("/")[0] != author)
        providers = (*providers, author)
    if models is not None and model not in models:
        models = (*models, model)
    return replace(policy, models=models, providers=providers)


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A workspace's policy, the projects with one of their own, and what applies where asked."""

    workspace: str
    provider: str  # the workspace's key provider: whose catalog lists its models
    policy: ModelPolicy  # the workspace's
    own: tuple[tuple[str, ModelPolicy], ...]  # (project, its policy) for each project with its own
    project: str | None = None
    effective: ModelPolicy = OPEN  # for the project asked about, else the workspace's
    follows: bool = True  # the project asked about follows the workspace


def show(s: Session, actor: Actor, workspace_id: int, project: str | None = None) -> Shown:
    """Every member may see what their keys may call."""
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="model_policy.show")
    proj = _project(s, ws, project) if project else None
    projects = s.scalars(select(Project).where(Project.workspace_id == ws.id).order_by(Project.slug))
    own = tuple((p.slug, ModelPolicy.from_json(p.model_policy)) for p in projects if p.model_policy is not None)
    return Shown(ws.slug, ws.provider, ModelPolicy.from_json(ws.model_policy), own, proj.slug if proj else None, effective(ws, proj), proj is None or proj.model_policy is None)


# -- changing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """The policy now in force where it was changed (a project, or the workspace)."""

    workspace: str
    project: str | None
    policy: ModelPolicy
    follows: bool = False  # the project follows the workspace again (reset)


def set_models(s: Session, actor: Actor, workspace_id: int, models: Iterable[str] | None, *, project: str | None = None) -> Change:
    """Only these models (``author/*`` for one author's); None: any model."""
    listed = None if models is None else _entries(models, parse_model, "model")
    return _edit(s, actor, workspace_id, project, "model_policy.models", lambda p: replace(p, models=listed))


def set_providers(s: Session, actor: Actor, workspace_id: int, providers: Iterable[str] | None, *, project: str | None = None) -> Change:
    """Only models of these providers; None: any provider."""
    listed = None if providers is None else _entries(providers, parse_provider, "provider")
    return _edit(s, actor, workspace_id, project, "model_policy.providers", lambda p: replace(p, providers=listed))


def set_zdr(s: Session, actor: Actor, workspace_id: int, required: bool, *, project: str | None = None) -> Change:
    return _edit(s, actor, workspace_id, project, "model_policy.zdr", lambda p: replace(p, zdr=bool(required)))


def reset(s: Session, actor: Actor, workspace_id: int, project: str) -> Change:
    """The project follows the workspace's policy again."""
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MODEL_POLICY, resource=f"project:{project}", attempted="model_policy.reset")
    proj = _project(s, ws, project, lock=True)
    if proj.model_policy is None:
        raise Conflict(f"Project `{proj.slug}` already follows the workspace's model policy; nothing changed.")
    before = effective(ws, proj)
    old, proj.model_policy = proj.model_policy, None
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="model_policy.reset", resource=f"project:{proj.slug}", details={"from": old, "to": None})
    if effective(ws, proj) != before:
        _emit(s, ws, [proj.id])
    return Change(ws.slug, proj.slug, effective(ws, proj), follows=True)


def _edit(s: Session, actor: Actor, workspace_id: int, project: str | None, action: str, edit) -> Change:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MODEL_POLICY, resource=f"project:{project}" if project else f"workspace:{ws.slug}", attempted=action)
    proj = _project(s, ws, project, lock=True) if project else None
    # A project without a policy of its own starts from the workspace's: changing one thing
    # for it keeps everything else the workspace requires (zero data retention, say).
    return apply_policy(s, actor.label, ws, proj, edit(effective(ws, proj)), action)


def apply_policy(s: Session, actor_label: str, ws: Workspace, proj: Project | None, new: ModelPolicy, action: str, *, via_request: int | None = None) -> Change:
    """Store ``new`` on the project (or the workspace), audit it, and tell the provider where it changed what applies."""
    details: dict[str, Any] = {"request": via_request} if via_request else {}
    if proj is not None:
        if proj.model_policy is not None and ModelPolicy.from_json(proj.model_policy) == new:
            raise Conflict(f"Project `{proj.slug}` already has exactly that model policy; nothing changed.")
        before = effective(ws, proj)
        old, proj.model_policy = proj.model_policy, new.to_json()
        audit.record(s, workspace_id=ws.id, actor=actor_label, action=action, resource=f"project:{proj.slug}", details={"from": old, "to": proj.model_policy, **details})
        if new != before:
            _emit(s, ws, [proj.id])
        return Change(ws.slug, proj.slug, new)
    old_policy = ModelPolicy.from_json(ws.model_policy)
    if old_policy == new:
        raise Conflict(f"`{ws.slug}` already has exactly that model policy; nothing changed.")
    old, ws.model_policy = ws.model_policy, new.to_json()  # a new dict: SQLAlchemy sees the change
    audit.record(s, workspace_id=ws.id, actor=actor_label, action=action, resource=f"workspace:{ws.slug}", details={"from": old or {}, "to": ws.model_policy, **details})
    # Read in Python: a project's JSON column may hold SQL NULL or JSON null, both meaning "follow".
    following = [p.id for p in s.scalars(select(Project).where(Project.workspace_id == ws.id).order_by(Project.id)) if p.model_policy is None]
    _emit(s, ws, [*following, None])  # None: the keys that belong to no project
    return Change(ws.slug, None, new)


def _emit(s: Session, ws: Workspace, project_ids: list[int | None]) -> None:
    for project_id in project_ids:
        outbox.emit(s, ActionKind.APPLY_MODEL_POLICY, workspace_id=ws.id, payload={"workspace_id": ws.id, "project_id": project_id})


def _project(s: Session, ws: Workspace, slug: str, *, lock: bool = False) -> Project:
    stmt = select(Project).where(Project.workspace_id == ws.id, Project.slug == slug.strip().lower())
    proj = s.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
    if proj is None:
        raise NotFound(f"`{ws.slug}` has no project called `{slug[:40].replace('`', '')}`.", see=LIST_PROJECTS)
    return proj


# -- asking for a model -------------------------------------------------------------------


def request_model(s: Session, actor: Actor, workspace_id: int, model: str, *, project: str | None = None, reason: str | None = None) -> Request:
    """A Developer (or an Admin) asks for a model outside the policy; Admins decide."""
    model = parse_model(model)
    ws = load_workspace(s, workspace_id)
    me = requester_member(s, actor, ws, Permission.MANAGE_MODEL_POLICY, "request.model_access")
    proj = _project(s, ws, project) if project else None
    where = f"project `{proj.slug}`" if proj else f"`{ws.slug}`"
    if covers(effective(ws, proj), model):
        raise Conflict(f"`{model}` is already allowed in {where}: use it, no request needed.")
    if not (reason or "").strip():
        raise InvalidInput('Say why you need it: --reason "…". Admins decide on it.')
    pending = s.scalars(select(Request).where(Request.requester_id == me.id, Request.kind == RequestKind.MODEL_ACCESS, Request.state == RequestState.PENDING))
    for req in pending:
        if req.payload.get("model") == model and req.payload.get("project_id") == (proj.id if proj else None):
            raise Conflict(f"You already asked for `{model}` in {where} (request #{req.id}); it is waiting for an Admin.")
    payload = {"model": model, "project_id": proj.id if proj else None, "project": proj.slug if proj else None}
    return open_request(s, ws, me, RequestKind.MODEL_ACCESS, payload, reason=reason)


def apply_model_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    """Approved: the model joins the project's policy (the workspace's when no project is named)."""
    project_id = req.payload.get("project_id")
    proj = s.scalars(select(Project).where(Project.id == project_id).with_for_update()).one() if project_id else None
    current = effective(ws, proj)
    if covers(current, req.payload["model"]):  # allowed meanwhile (an Admin widened the policy): nothing to add
        return
    apply_policy(s, actor.label, ws, proj, with_model(current, req.payload["model"]), "model_policy.models", via_request=req.id)
