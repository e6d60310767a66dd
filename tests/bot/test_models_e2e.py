"""The model policy from Slack, over signed HTTP with the workers running: `/ai-workspace models` and `/ai-models`."""

from __future__ import annotations

import pytest

from store import policy, workspaces
from store.policy import ModelPolicy
from store.types import Role
from tests import factories as f

APPROVALS = "C0APPROVALS"


def team(db):
    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    viewer = f.member(db, ws, Role.VIEWER).slack_user_id
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS)
    f.project(db, ws, "search")
    return ws, admin, dev, viewer


def said(slack, user: str, command: str, text: str) -> str:
    answer = slack.command(user, command, text)
    assert answer.status_code == 200
    return answer.json()["text"]


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def policy_of(db, ws: int, project: str | None = None) -> ModelPolicy:
    return db.run(policy.show, f.OPERATOR, ws, project).effective


def test_an_admin_sets_the_policy_for_the_workspace_and_a_project_and_everyone_sees_it(db, slack, stub_workers):
    ws, admin, dev, viewer = team(db)
    answer = said(slack, admin, "/ai-workspace", "models allow openai/* Anthropic/Claude-3.5-Sonnet")
    assert answer == "✅ Model policy of `prod`: only `openai/*`, `anthropic/claude-3.5-sonnet`; any provider; zero data retention not required."
    answer = said(slack, admin, "/ai-workspace", "models zdr on --project search")
    assert "project `search` of `prod`: only `openai/*`, `anthropic/claude-3.5-sonnet`; any provider; zero data retention required" in answer
    assert "only `openai`" in said(slack, admin, "/ai-workspace", "models providers openai --project search")
    shown = said(slack, dev, "/ai-workspace", "models")
    assert shown.startswith("*Model policy of `prod`*: only `openai/*`")
    assert "• `search`: only `openai/*`, `anthropic/claude-3.5-sonnet`; only `openai`; zero data retention required" in shown
    assert "Project `search` has its own" in said(slack, viewer, "/ai-workspace", "models --project search")
    assert "any provider" in said(slack, admin, "/ai-workspace", "models providers any --project search")
    assert "any model; any provider" in said(slack, admin, "/ai-workspace", "models any")
    answer = said(slack, admin, "/ai-workspace", "models reset --project search")
    assert answer == "✅ Project `search` follows the model policy of `prod` again: any model; any provider; zero data retention not required."
    assert "Every project follows it." in said(slack, dev, "/ai-workspace", "models")
    assert "`model_policy.reset`" in said(slack, admin, "/ai-audit", "recent 3")


def test_a_model_id_slack_turned_into_a_link_is_read_as_typed(db, slack, stub_workers):
    ws, admin, dev, viewer = team(db)
    # Slack links what looks like a domain: x.ai/grok-2 arrives as <http://x.ai/grok-2|x.ai/grok-2>
    assert "only `x.ai/grok-2`" in said(slack, admin, "/ai-workspace", "models allow <http://x.ai/grok-2|x.ai/grok-2>")
    assert policy_of(db, ws).models == ("x.ai/grok-2",)


@pytest.mark.parametrize(
    "command,text,expected",
    [
        ("/ai-workspace", 'models allow "open ai/gpt-4o"', "“open ai/gpt-4o” is not a model id. Write it as author/name"),
        ("/ai-workspace", "models allow gpt-4o", "“gpt-4o” names no author: write the model as author/name, like openai/gpt-4o — did you mean openai/gpt-4o?"),
        ("/ai-workspace", "models allow openai/gpt-4o&amp;x", "“openai/gpt-4o&amp;x” is not a model id"),  # a typed &, shown as one &
        ("/ai-workspace", "models allow openai/* --project nowhere", "`prod` has no project called `nowhere`. `/ai-budget show` lists them."),
        ("/ai-workspace", "models zdr maybe", "Say which way for zero data retention: on, off."),
        ("/ai-workspace", "models reset", "Say which project follows the workspace again"),
        ("/ai-workspace", "models allow", "Name the models"),
        ("/ai-workspace", "models providers any openai", "`any` stands alone"),
        ("/ai-workspace", "models fly", "is not something `/ai-workspace models` does"),
        ("/ai-models", "request", "Name one model"),
        ("/ai-models", "request anthropic/claude-3.5-sonnet", "Say why you need it"),
        ("/ai-models", "request openai/gpt-4o --reason “more”", "`openai/gpt-4o` is already allowed in `prod`: use it, no request needed."),
        ("/ai-models", "list --project nowhere", "`prod` has no project called `nowhere`"),
        ("/ai-models", "browse", "is not something /ai-models does"),
    ],
)
def test_bad_input_is_answered_in_plain_words_and_changes_nothing(db, slack, stub_workers, command, text, expected):
    ws, admin, dev, viewer = team(db)
    db.run(policy.set_models, f.OPERATOR, ws, ["openai/*"])
    user = dev if command == "/ai-models" else admin
    answer = said(slack, user, command, text)
    assert expected in answer, answer
    assert "error id" not in answer and "&amp;amp;" not in answer
    assert policy_of(db, ws) == ModelPolicy(models=("openai/*",))


def test_a_developer_cannot_set_the_policy_and_is_told_to_ask(db, slack, stub_workers):
    ws, admin, dev, viewer = team(db)
    answer = said(slack, dev, "/ai-workspace", "models allow openai/*")
    assert answer == "Only an Admin can change which models the workspace's keys may call; you are a Developer. You can ask an admin instead with a request."
    assert policy_of(db, ws) == ModelPolicy()


def test_the_catalog_lists_what_the_policy_allows_from_the_price_table(db, slack, stub_workers):
    ws, admin, dev, viewer = team(db)
    listed = said(slack, dev, "/ai-models", "")
    assert "7 of the 7 in Purser's price table are allowed" in listed
    said(slack, admin, "/ai-workspace", "models allow openai/* --project search")
    listed = said(slack, dev, "/ai-models", "--project search")
    assert listed.startswith("*Models for project `search` of `prod`*: 4 of the 7 in Purser's price table are allowed (only `openai/*`")
    assert "• `openai/gpt-4o` — $2.50 in / $10.00 out per million tokens" in listed
    assert "• `openai/gpt-4o-mini` — $0.15 in / $0.60 out per million tokens" in listed
    assert "claude" not in listed and "mistral" not in listed
    assert '`/ai-models request <author/name> --reason "…"`' in listed
    assert "7 of the 7" in said(slack, viewer, "/ai-models", "")  # the workspace's own policy is still open


def test_an_approved_model_request_lets_the_project_use_the_model(db, slack, slack_api, stub_workers):
    ws, admin, dev, viewer = team(db)
    said(slack, admin, "/ai-workspace", "models allow openai/*")
    answer = said(slack, dev, "/ai-models", "request anthropic/claude-3-5-haiku --project search --reason “cheaper evals”")
    assert answer.startswith("📨 Asked the Admins to allow `anthropic/claude-3-5-haiku` in project `search` — request #")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    assert approval.text.startswith("Model access request #") and "`anthropic/claude-3-5-haiku` in project `search`" in approval.text
    assert "cheaper evals" in str(approval.blocks) and "adds it to project `search`'s model policy" in str(approval.blocks)
    slack.click(admin, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts)
    stub_workers.settle()
    assert "Approved" in str(approval.blocks)
    told = [m for m in slack_api.channel_messages("D" + dev[1:]) if "was approved" in m.text]
    assert told and "Your keys may call it now" in str(told[0].blocks)
    assert policy_of(db, ws, "search").models == ("openai/*", "anthropic/claude-3-5-haiku")
    assert policy_of(db, ws).models == ("openai/*",)
    assert "• `anthropic/claude-3-5-haiku` — $0.80 in / $4.00 out" in said(slack, dev, "/ai-models", "--project search")


def test_a_denied_model_request_adds_nothing(db, slack, slack_api, stub_workers):
    ws, admin, dev, viewer = team(db)
    said(slack, admin, "/ai-workspace", "models allow openai/*")
    said(slack, dev, "/ai-models", "request mistralai/mistral-small --reason “French”")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    slack.click(admin, "request_deny", buttons(approval)["request_deny"], channel=APPROVALS, message_ts=approval.ts)
    [modal] = slack_api.views.values()
    assert slack.submit(admin, modal, {"reason": "not this quarter"}).status_code == 200
    stub_workers.settle()
    assert "Denied" in str(approval.blocks)
    assert policy_of(db, ws) == ModelPolicy(models=("openai/*",))
    assert "mistral" not in said(slack, dev, "/ai-models", "")


def test_a_viewer_cannot_ask_for_a_model(db, slack, slack_api, stub_workers):
    ws, admin, dev, viewer = team(db)
    said(slack, admin, "/ai-workspace", "models allow openai/*")
    answer = said(slack, viewer, "/ai-models", "request anthropic/claude-3-5-haiku --reason “curious”")
    assert answer == "Only an Admin or Developer can ask for this; you are a Viewer."
    stub_workers.settle()
    assert slack_api.channel_messages(APPROVALS) == []


class WithModels:
    """The workers' OpenRouter provider with a catalog, as the provider's ``models()`` gives it (GET /models items)."""

    def __init__(self, inner, models=None, error: Exception | None = None) -> None:
        self.inner, self.listed, self.error, self.asked = inner, models or [], error, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def models(self):
        self.asked += 1
        if self.error is not None:
            raise self.error
        return self.listed


OPENROUTER_MODELS = [
    {"id": "openai/gpt-4o", "name": "OpenAI: GPT-4o", "pricing": {"prompt": "0.0000025", "completion": "0.00001"}},
    {"id": "anthropic/claude-3.5-sonnet", "name": "Anthropic: Claude 3.5 Sonnet", "pricing": {"prompt": "0.000003", "completion": "0.000015"}},
    {"id": "meta-llama/llama-3.1-8b-instruct:free", "name": "Meta: Llama 3.1 8B Instruct (free)", "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "openrouter/auto", "name": "Auto Router", "pricing": {"prompt": "-1", "completion": "-1"}},
]


def test_an_openrouter_workspace_lists_openrouters_catalog_read_by_a_worker(db, slack, stub_workers):
    ws = f.workspace(db, "routed", "development", provider="openrouter")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    provider = WithModels(stub_workers.rt.provider("openrouter"), OPENROUTER_MODELS)
    stub_workers.rt.providers["openrouter"] = provider
    listed = said(slack, admin, "/ai-models", "")
    assert "4 of the 4 in openrouter's catalog are allowed" in listed
    assert "• `openai/gpt-4o` OpenAI: GPT-4o — $2.50 in / $10.00 out per million tokens" in listed
    assert "• `meta-llama/llama-3.1-8b-instruct:free` Meta: Llama 3.1 8B Instruct (free) — free in / free out" in listed
    assert "• `openrouter/auto` Auto Router — varies in / varies out" in listed
    said(slack, admin, "/ai-workspace", "models providers anthropic meta-llama")
    listed = said(slack, admin, "/ai-models", "")
    assert "2 of the 4" in listed and "openai/gpt-4o" not in listed and "anthropic/claude-3.5-sonnet" in listed
    assert provider.asked == 1  # kept a few minutes by the worker: OpenRouter is not asked for every listing


def test_when_openrouter_cannot_be_read_the_listing_says_so(db, slack, stub_workers):
    from workers.providers.base import TransientProviderError

    ws = f.workspace(db, "routed", "development", provider="openrouter")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    stub_workers.rt.providers["openrouter"] = WithModels(stub_workers.rt.provider("openrouter"), error=TransientProviderError("OpenRouter answered 503"))
    answer = said(slack, admin, "/ai-models", "")
    assert answer == "Purser could not read openrouter's list of models (OpenRouter answered 503). Try again in a minute."
