"""What a model policy allows, as properties over generated policies and model ids (no store: the rules are pure)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from store.policy import ModelPolicy, allows, covers, qualify, refusal, with_model

AUTHORS = ["openai", "anthropic", "google", "mistralai", "acme"]
NAMES = ["gpt-4o", "gpt-4o-mini", "claude-3.5-sonnet", "gemini-2.0-flash", "mistral-large", "llama-3.1-8b:free", "tiny"]

authors = st.sampled_from(AUTHORS)
names = st.sampled_from(NAMES)
model_ids = st.builds(lambda a, n: f"{a}/{n}", authors, names)
entries = st.one_of(model_ids, st.builds(lambda a: f"{a}/*", authors))
policies = st.builds(
    ModelPolicy,
    models=st.none() | st.lists(entries, min_size=1, max_size=5, unique=True).map(tuple),
    providers=st.none() | st.lists(authors, min_size=1, max_size=3, unique=True).map(tuple),
    zdr=st.booleans(),
)
#: what a gateway may send: author/name, a bare name (as OpenAI-compatible clients send it), odd case
sent = st.one_of(model_ids, names, model_ids.map(str.upper))

quick = settings(max_examples=300, deadline=None)


@quick
@given(author=authors, other=authors, name=names, zdr=st.booleans())
def test_an_author_wildcard_allows_every_model_of_that_author_and_no_other(author, other, name, zdr):
    policy = ModelPolicy(models=(f"{author}/*",), zdr=zdr)
    assert allows(policy, f"{author}/{name}")
    assert allows(policy, f"{other}/{name}") == (other == author)


@quick
@given(providers=st.lists(authors, min_size=1, max_size=3, unique=True), model=model_ids)
def test_a_providers_list_allows_exactly_the_models_whose_author_is_on_it(providers, model):
    policy = ModelPolicy(providers=tuple(providers))
    assert allows(policy, model) == (model.split("/")[0] in providers)
    if not allows(policy, model):
        assert refusal(policy, model) == f"only models by {', '.join(providers)} are allowed"


@quick
@given(policy=policies, model=sent)
def test_a_model_must_pass_both_lists(policy, model):
    checked = qualify(model)
    author, slash, _ = checked.partition("/")
    if slash:
        by_provider = policy.providers is None or author in policy.providers
        by_model = policy.models is None or checked in policy.models or f"{author}/*" in policy.models
    else:  # a bare name no author is known for: only an entry of that very name lets it through
        by_provider = policy.providers is None
        by_model = policy.models is None or any(entry.endswith(f"/{checked}") for entry in policy.models)
    assert allows(policy, model) == (by_provider and by_model)


@quick
@given(policy=policies, model=model_ids)
def test_zero_data_retention_refuses_only_a_model_known_not_to_offer_it(policy, model):
    allowed = allows(policy, model)
    assert allows(policy, model, zdr_capable=True) == allowed
    assert allows(policy, model, zdr_capable=None) == allowed  # not known: OpenRouter's guardrail decides
    assert allows(policy, model, zdr_capable=False) == (allowed and not policy.zdr)


@quick
@given(policy=policies, model=model_ids, other=sent)
def test_adding_a_model_allows_it_and_changes_nothing_else(policy, model, other):
    wider = with_model(policy, model)
    assert allows(wider, model) and wider.zdr == policy.zdr
    if qualify(other) not in (model, model.partition("/")[2]):  # the model itself, or its bare name
        assert allows(wider, other) == allows(policy, other)


@quick
@given(policy=policies, author=authors)
def test_an_author_wildcard_is_covered_only_when_all_its_models_are(policy, author):
    if covers(policy, f"{author}/*"):
        assert all(allows(policy, f"{author}/{name}") for name in NAMES)


@quick
@given(policy=policies)
def test_the_stored_json_gives_back_the_same_policy(policy):
    assert ModelPolicy.from_json(policy.to_json()) == policy


def test_bare_names_are_checked_as_the_author_who_makes_them():
    policy = ModelPolicy(models=("openai/*", "acme/tiny"))
    assert qualify("GPT-4o") == "openai/gpt-4o" and allows(policy, "gpt-4o") and allows(policy, "o3-mini")
    assert not allows(policy, "claude-3.5-sonnet")
    assert allows(policy, "tiny")  # no author known: an entry of exactly that name allows it
    assert not allows(ModelPolicy(providers=("acme",)), "tiny")  # but a providers list cannot tell whose it is
