"""Approval rules as plain data: what a rule matches, what it asks for, the defaults, and the words for both.

Pure functions only (no session): the store's operations (store.approvals, store.requests)
read and write the rules, and the Slack layer shows progress with ``progress_text``.

A workspace's policy is its own rules followed by the defaults of its key policy; the
**first rule that matches** a request decides it. First-match (rather than "the strictest
of all that match") lets a rule make an exception, like "keys under $50: automatic"
ahead of "keys: 2 Admins", and the list reads top to bottom the way it is applied.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from store.errors import InvalidInput
from store.money import format_money, parse_money
from store.types import ROLE_CAPS, KeyPolicy, RequestKind, Role

#: the roles whose members may approve; an Admin among them always (``parse_rule``)
APPROVER_ROLES = (Role.ADMIN, Role.BILLING)
MAX_RULES = 20

#: the payload field holding each kind's amount; kinds not here have none
AMOUNT_FIELD = {
    RequestKind.KEY: "limit_micros",
    RequestKind.BUDGET_CHANGE: "budget_micros",
    RequestKind.CAP_CHANGE: "cap_micros",
    RequestKind.CREDIT_TOPUP: "amount_micros",
    RequestKind.BUDGET_RAISE: "amount_micros",
}
KIND_WORDS = {
    "key": RequestKind.KEY,
    "invite": RequestKind.INVITE,
    "invitation": RequestKind.INVITE,
    "budget": RequestKind.BUDGET_CHANGE,
    "raise": RequestKind.BUDGET_RAISE,
    "cap": RequestKind.CAP_CHANGE,
    "role": RequestKind.ROLE_CHANGE,
    "credit": RequestKind.CREDIT_TOPUP,
    "topup": RequestKind.CREDIT_TOPUP,
    "model": RequestKind.MODEL_ACCESS,
}
KIND_NAMES = {kind: word for word, kind in reversed(KIND_WORDS.items())}
_PLURAL = {Role.ADMIN: "Admins", Role.BILLING: "Billing Managers", Role.DEVELOPER: "Developers", Role.VIEWER: "Viewers"}
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


@dataclass(frozen=True)
class Facts:
    """What a rule can see of a request."""

    kind: RequestKind
    amount: int | None  # micro-dollars; None for a kind with an amount means no limit at all
    project: str | None
    role: Role  # the requester's
    within_preset: bool = False  # a key whose limit and lifetime are within its owner's role preset


def facts_of(kind: RequestKind, payload: Mapping, role: Role, *, within_preset: bool = False) -> Facts:
    if kind is RequestKind.KEY_EXTEND:  # the same key for longer: the key rules decide it, on its limit and project
        kind = RequestKind.KEY
    amount = payload.get(AMOUNT_FIELD[kind]) if kind in AMOUNT_FIELD else None
    return Facts(kind, amount, payload.get("project"), role, within_preset)


@dataclass(frozen=True)
class Rule:
    kind: RequestKind | None = None
    over: int | None = None
    under: int | None = None
    project: str | None = None
    by: Role | None = None
    within_preset: bool = False
    #: approvers per role, in the order shown; empty: approved at once
    needs: tuple[tuple[Role, int], ...] = ()
    #: what an automatic approval by this rule says (the defaults keep the words they always had)
    note: str | None = field(default=None, compare=False)

    @property
    def automatic(self) -> bool:
        return not self.needs

    def matches(self, f: Facts) -> bool:
        if self.kind is not None and f.kind is not self.kind:
            return False
        if self.over is not None or self.under is not None:
            if f.kind not in AMOUNT_FIELD:
                return False  # "over $500" says nothing of an invitation
            if self.over is not None and not (f.amount is None or f.amount > self.over):
                return False
            if self.under is not None and (f.amount is None or f.amount >= self.under):
                return False
        if self.project is not None and f.project != self.project:
            return False
        if self.by is not None and f.role is not self.by:
            return False
        return not self.within_preset or f.within_preset

    def text(self) -> str:
        """The rule as `/ai-workspace policy set` takes it back."""
        words = [KIND_NAMES[self.kind] if self.kind else "any"]
        if self.over is not None:
            words.append(f"over {format_money(self.over)}")
        if self.under is not None:
            words.append(f"under {format_money(self.under)}")
        if self.project:
            words.append(f"project {self.project}")
        if self.by:
            words.append(f"by {self.by.value}")
        if self.within_preset:
            words.append("within preset")
        return " ".join(words) + ": " + ("automatic" if self.automatic else needs_words(dict(self.needs), plus=True))

    def automatic_note(self) -> str:
        return self.note or f"the workspace's approval rule “{self.text()}”"


ADMINS_OWN_KEYS = Rule(kind=RequestKind.KEY, by=Role.ADMIN, note="admins create their own keys")
WITHIN_PRESET = Rule(kind=RequestKind.KEY, within_preset=True, note="within the role's preset in an auto-approval workspace")
ONE_ADMIN = Rule(needs=((Role.ADMIN, 1),))
#: what a workspace with no rules of its own does, by its key policy (production and staging
#: start as `approval`, development as `auto`): exactly what Purser did before policies were data
DEFAULTS: dict[KeyPolicy, tuple[Rule, ...]] = {
    KeyPolicy.APPROVAL: (ADMINS_OWN_KEYS, ONE_ADMIN),
    KeyPolicy.AUTO: (ADMINS_OWN_KEYS, WITHIN_PRESET, ONE_ADMIN),
}


def first_match(rules: Iterable[Rule], f: Facts) -> Rule:
    for rule in rules:
        if rule.matches(f):
            return rule
    return ONE_ADMIN  # the defaults end with a rule that matches anything; this is only their echo


# --- who is still needed -----------------------------------------------------------------


def needs_of(stored: Mapping[str, int] | None) -> dict[Role, int]:
    """A request's stored needs; a request opened before policies were data needs one Admin."""
    if stored is None:
        return {Role.ADMIN: 1}
    return {Role(role): int(n) for role, n in stored.items() if int(n) > 0}


def still_needed(needs: Mapping[Role, int], approved: Iterable[Role]) -> dict[Role, int]:
    """Approvers per role the request still waits for, from the roles of the approvals recorded.

    A member holds one role in a workspace, so each approval counts toward its approver's role
    and there is no assignment to choose; an approval of a role not needed counts for nothing.
    """
    got = Counter(approved)
    return {role: n - got[role] for role, n in needs.items() if n > got[role]}


def needs_words(needs: Mapping[Role, int], *, plus: bool = False) -> str:
    """`2 Admins and a Billing Manager`; with ``plus``, the rule's own form `2 Admins + 1 Billing Manager`."""
    if plus:
        return " + ".join(f"{n} {_PLURAL[r] if n > 1 else r.title}" for r, n in needs.items())
    parts = [f"{n} {_PLURAL[r]}" if n > 1 else f"{'an' if r.title[0] in 'AEIOU' else 'a'} {r.title}" for r, n in needs.items()]
    return " and ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + " and " + parts[-1]


def progress_text(needs: Mapping[Role, int], approved: Iterable[Role]) -> str:
    """`1 of 2 Admins · Billing Manager needed`: each role's count, and a role nobody gave yet by name."""
    got = Counter(approved)
    parts = []
    for role, n in needs.items():
        have = min(got[role], n)
        if n == 1:
            parts.append(f"{role.title} ✓" if have else f"{role.title} needed")
        else:
            parts.append(f"{have} of {n} {_PLURAL[role]}" + (" ✓" if have == n else ""))
    return " · ".join(parts)


# --- parsing what an Admin types -----------------------------------------------------------


def parse_rules(text: str) -> list[Rule]:
    """Rules separated by `;` (or new lines), each `<what it matches>: <who approves>`."""
    pieces = [p.strip() for p in re.split(r"[;\n]", text or "") if p.strip()]
    if not pieces:
        raise InvalidInput(
            "Give at least one rule, like `key over $500: 2 admins + billing; key: 1 admin`. To go back to the defaults, reset the policy instead."
        )
    if len(pieces) > MAX_RULES:
        raise InvalidInput(f"A policy holds at most {MAX_RULES} rules; this one has {len(pieces)}.")
    return [parse_rule(piece, n) for n, piece in enumerate(pieces, 1)]


def parse_rule(text: str, n: int = 1) -> Rule:
    shown = text if len(text) <= 80 else text[:79] + "…"

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"Rule {n} (“{shown}”): {why}")

    match, colon, asks = text.partition(":")
    if not colon or not asks.strip():
        raise refuse("write what it matches, a colon, then who approves, like `key over $500: 2 admins + billing`.")
    try:
        rule = _match(match.lower().split())
        needs = _needs(asks.strip().lower())
    except InvalidInput as exc:
        raise refuse(exc.message) from None
    rule = Rule(**{**rule, "needs": needs})
    if rule.automatic and rule.kind is not RequestKind.KEY:
        raise refuse("only key requests can be approved automatically; start the rule with `key`.")
    if rule.within_preset and rule.kind is not RequestKind.KEY:
        raise refuse("“within preset” is about keys; start the rule with `key`.")
    if rule.kind is not None and rule.kind not in AMOUNT_FIELD and (rule.over is not None or rule.under is not None):
        raise refuse(f"{KIND_NAMES[rule.kind]} requests have no amount, so “over” and “under” cannot apply to them.")
    if rule.over is not None and rule.under is not None and rule.over >= rule.under - 1:
        raise refuse(f"no amount is over {format_money(rule.over)} and under {format_money(rule.under)}.")
    return rule


def _match(words: list[str]) -> dict:
    found: dict = {}
    i = 0
    while i < len(words):
        word, nxt = words[i], words[i + 1] if i + 1 < len(words) else None
        if word in ("any", "anything", "all", "every") or word.rstrip("s") in KIND_WORDS or word.removesuffix("-change") in KIND_WORDS:
            if "kind" in found:
                raise InvalidInput("name one kind of request per rule (or `any`); write another rule for the other kind.")
            base = word.removesuffix("-change").rstrip("s") if word not in ("any", "anything", "all", "every") else None
            found["kind"] = KIND_WORDS.get(base) if base else None
            i += 1
        elif word in ("over", "above", "under", "below"):
            if nxt is None:
                raise InvalidInput(f"say how much after “{word}”, like `{word} $500`.")
            found["over" if word in ("over", "above") else "under"] = parse_money(nxt)
            i += 2
        elif word == "project" or word.startswith("project="):
            slug = word.partition("=")[2] or nxt
            if not slug or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", slug):
                raise InvalidInput("name the project after “project”, like `project search`.")
            found["project"] = slug
            i += 1 if "=" in word else 2
        elif word == "by":
            if nxt is None:
                raise InvalidInput("say whose requests after “by”, like `by developer`.")
            role_words = [nxt]
            if nxt == "billing" and i + 2 < len(words) and words[i + 2].startswith("manager"):
                role_words.append("manager")
            found["by"] = _role(" ".join(role_words))
            i += 1 + len(role_words)
        elif word == "within" and nxt in ("preset", "presets") or word == "within-preset":
            found["within_preset"] = True
            i += 2 if word == "within" else 1
        else:
            raise InvalidInput(
                f"“{word[:30]}” is not something a rule matches on. Use a kind (key, invite, budget, cap, role, credit, model or any), "
                "`over $N`, `under $N`, `project <name>`, `by <role>` or `within preset`."
            )
    if not found:
        raise InvalidInput("say what the rule matches: a kind of request (key, invite, budget, cap, role, credit, model) or `any`.")
    return found


def _needs(text: str) -> tuple[tuple[Role, int], ...]:
    if text in ("auto", "automatic", "automatically", "approved automatically"):
        return ()
    counts: dict[Role, int] = {}
    for term in re.split(r"\s*(?:\+|,|\band\b)\s*", text):
        if not term:
            continue
        m = re.fullmatch(r"(?:(\d{1,2}|a|an|one|two|three|four|five)\s+)?(.+?)", term.strip())
        n = int(m.group(1)) if m.group(1) and m.group(1).isdigit() else _NUMBERS.get(m.group(1) or "a", 1)
        role = _role(m.group(2))
        if role not in APPROVER_ROLES:
            raise InvalidInput(f"only Admins and Billing Managers approve requests, not {_PLURAL[role]}.")
        counts[role] = counts.get(role, 0) + n
    if not counts:
        raise InvalidInput("say who approves, like `2 admins + billing`, or `automatic`.")
    for role, n in counts.items():
        if n < 1:
            raise InvalidInput("a rule asks for at least one approver of each role it names.")
        if role in ROLE_CAPS and n > ROLE_CAPS[role]:
            raise InvalidInput(f"a workspace has at most {ROLE_CAPS[role]} {_PLURAL[role]}, so a rule cannot need {n}.")
    if Role.ADMIN not in counts:
        raise InvalidInput("every rule with approvers needs at least one Admin among them: a Billing Manager adds to an Admin's approval, not in place of it.")
    return tuple((r, counts[r]) for r in APPROVER_ROLES if r in counts)


def _role(text: str) -> Role:
    words = text.strip().lower()
    for candidate in (words, words.removesuffix("s"), words.removesuffix("s").removesuffix(" manager"), words.removesuffix(" managers")):
        try:
            return Role.parse(candidate)
        except InvalidInput:
            continue
    raise InvalidInput(f"“{text[:30]}” is not a role. Use admin, billing, developer or viewer.")
