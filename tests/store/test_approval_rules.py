"""Approval rules as data: matching (first match wins), who is still needed, the progress words, and parsing what an Admin types."""

from __future__ import annotations

import pytest

from store.approval_rules import DEFAULTS, Facts, facts_of, first_match, needs_of, needs_words, parse_rule, parse_rules, progress_text, still_needed
from store.errors import InvalidInput
from store.money import parse_money
from store.types import KeyPolicy, RequestKind, Role

A, B, D = Role.ADMIN, Role.BILLING, Role.DEVELOPER
KEY, CAP, INVITE, BUDGET = RequestKind.KEY, RequestKind.CAP_CHANGE, RequestKind.INVITE, RequestKind.BUDGET_CHANGE

#: the issue's production example, written as an Admin would
PRODUCTION = parse_rules("key over $500: 2 admins + billing; cap: 2 admins + billing manager; key: 2 admins")


def key(limit: str | None, role: Role = D, project: str | None = None, within_preset: bool = False) -> Facts:
    return Facts(KEY, parse_money(limit) if limit is not None else None, project, role, within_preset)


def needs(rules, facts: Facts) -> dict[Role, int]:
    return dict(first_match(rules, facts).needs)


# --- the defaults are what Purser always did -----------------------------------------------


def test_production_default_one_admin_decides_a_developers_key_and_admins_own_keys_are_automatic():
    rules = DEFAULTS[KeyPolicy.APPROVAL]
    assert needs(rules, key("$10")) == {A: 1}
    assert needs(rules, key("$10", within_preset=True)) == {A: 1}  # an approval workspace approves nothing by preset
    assert first_match(rules, key("$10000", role=A)).automatic
    assert first_match(rules, key("$10000", role=A)).automatic_note() == "admins create their own keys"
    assert needs(rules, Facts(INVITE, None, None, D)) == {A: 1}
    assert needs(rules, Facts(CAP, parse_money("$1"), None, D)) == {A: 1}


def test_development_default_approves_a_key_within_the_preset_at_once_and_asks_an_admin_otherwise():
    rules = DEFAULTS[KeyPolicy.AUTO]
    within = first_match(rules, key("$10", within_preset=True))
    assert within.automatic and within.automatic_note() == "within the role's preset in an auto-approval workspace"
    assert needs(rules, key("$90", within_preset=False)) == {A: 1}
    assert needs(rules, Facts(BUDGET, parse_money("$10"), "search", D)) == {A: 1}


# --- matching ------------------------------------------------------------------------------


def test_the_first_matching_rule_decides_not_the_strictest():
    assert needs(PRODUCTION, key("$600")) == {A: 2, B: 1}
    assert needs(PRODUCTION, key("$500")) == {A: 2}  # "over" is strictly more
    assert needs(PRODUCTION, key("$500.000001")) == {A: 2, B: 1}
    assert needs(PRODUCTION, Facts(CAP, parse_money("$1"), None, D)) == {A: 2, B: 1}
    # an exception ahead of a general rule is what first-match is for
    rules = parse_rules("key under $50: automatic; key: 2 admins")
    assert first_match(rules, key("$49.99")).automatic
    assert needs(rules, key("$50")) == {A: 2}


def test_a_key_without_a_limit_is_over_every_amount_and_under_none():
    assert needs(PRODUCTION, key(None)) == {A: 2, B: 1}
    assert not first_match(parse_rules("key under $50: automatic"), key(None)).automatic


def test_amount_rules_skip_kinds_without_an_amount_and_other_rules_match_on_project_and_role():
    rules = parse_rules("any over $100: 2 admins; key project search by developer: 3 admins; any: 1 admin")
    assert needs(rules, Facts(INVITE, None, None, D)) == {A: 1}  # an invitation is over no amount
    assert needs(rules, Facts(BUDGET, parse_money("$101"), "maps", D)) == {A: 2}
    assert needs(rules, key("$10", project="search")) == {A: 3}
    assert needs(rules, key("$10", project="maps")) == {A: 1}
    assert needs(rules, key("$10", role=A, project="search")) == {A: 1}


def test_within_preset_matches_only_keys_within_their_owners_preset():
    rules = parse_rules("key within preset: auto; key: admin")
    assert first_match(rules, key("$10", within_preset=True)).automatic
    assert not first_match(rules, key("$10", within_preset=False)).automatic


# --- who is still needed ----------------------------------------------------------------------


def test_still_needed_counts_each_approval_toward_its_approvers_role():
    two_and_billing = {A: 2, B: 1}
    assert still_needed(two_and_billing, []) == {A: 2, B: 1}
    assert still_needed(two_and_billing, [A]) == {A: 1, B: 1}
    assert still_needed(two_and_billing, [A, B]) == {A: 1}
    assert still_needed(two_and_billing, [A, A]) == {B: 1}
    assert still_needed(two_and_billing, [A, A, B]) == {}
    assert still_needed({A: 1}, [D]) == {A: 1}  # a role not asked for counts for nothing


def test_a_request_opened_before_policies_were_data_needs_one_admin():
    assert needs_of(None) == {A: 1}
    assert needs_of({}) == {}
    assert needs_of({"admin": 2, "billing": 1}) == {A: 2, B: 1}


def test_progress_and_needs_are_said_in_plain_words():
    assert progress_text({A: 2, B: 1}, [A]) == "1 of 2 Admins · Billing Manager needed"
    assert progress_text({A: 2, B: 1}, [A, A]) == "2 of 2 Admins ✓ · Billing Manager needed"
    assert progress_text({A: 1, B: 1}, [B]) == "Admin needed · Billing Manager ✓"
    assert needs_words({A: 1, B: 1}) == "an Admin and a Billing Manager"
    assert needs_words({A: 2}) == "2 Admins"


# --- parsing ---------------------------------------------------------------------------------


def test_a_rule_reads_back_as_written_and_parses_to_itself():
    for text in (
        "key over $500: 2 admins + billing",
        "cap: admin and a billing manager",
        "budget project=search over 1k: two admins",
        "key by developer within preset: auto",
    ):
        rule = parse_rule(text)
        assert parse_rule(rule.text()) == rule, rule.text()
    assert parse_rule("keys over $500: 2 Admins + 1 Billing Manager").text() == "key over $500.00: 2 Admins + 1 Billing Manager"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("key 2 admins", "write what it matches, a colon, then who approves"),
        ("frob: admin", "“frob” is not something a rule matches on"),
        ("key over: admin", "say how much after “over”"),
        ("key over lots: admin", "is not an amount of money"),
        ("invite over $5: admin", "invite requests have no amount"),
        ("key over $50 under $50: admin", "no amount is over $50.00 and under $50.00"),
        ("budget: automatic", "only key requests can be approved automatically"),
        ("any within preset: admin", "“within preset” is about keys"),
        ("key: 6 admins", "a workspace has at most 5 Admins, so a rule cannot need 6"),
        ("key: 4 billing", "at most 3 Billing Managers"),
        ("key: billing", "needs at least one Admin among them"),
        ("key: 2 developers", "only Admins and Billing Managers approve requests, not Developers"),
        ("key: 2 wizards", "“wizards” is not a role"),
        ("key invite: admin", "name one kind of request per rule"),
        ("key by: admin", "say whose requests after “by”"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_rule_and_what_to_write(text, said):
    with pytest.raises(InvalidInput) as refused:
        parse_rules(f"key: admin; {text}")
    assert refused.value.message.startswith(f"Rule 2 (“{text}”): ")
    assert said in refused.value.message


def test_an_empty_or_overlong_policy_is_refused():
    with pytest.raises(InvalidInput, match="Give at least one rule"):
        parse_rules(" ; ")
    with pytest.raises(InvalidInput, match="at most 20 rules; this one has 21"):
        parse_rules("; ".join(["key: admin"] * 21))


def test_a_temporary_raise_is_matched_on_its_amount_and_an_extension_by_the_key_rules():
    rules = parse_rules("raise over $100: 2 admins + billing; key over $500: 2 admins; any: 1 admin")
    raise_of = {"amount_micros": parse_money("$200"), "project": "maps"}
    assert needs(rules, facts_of(RequestKind.BUDGET_RAISE, raise_of, D)) == {A: 2, B: 1}
    assert needs(rules, facts_of(RequestKind.BUDGET_RAISE, {**raise_of, "amount_micros": parse_money("$100")}, D)) == {A: 1}
    extension = {"key_id": 1, "by_minutes": 480, "limit_micros": parse_money("$600"), "project": None}
    assert needs(rules, facts_of(RequestKind.KEY_EXTEND, extension, D)) == {A: 2}
