"""The whole OpenRouter flow from Slack: link a workspace, set its model policy, ask for a key, approve it.

The key is made in the linked OpenRouter workspace, limited to its quota lease, and holds
its project's guardrail; the fake OpenRouter checks every request against OpenRouter's schemas.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select

from store import workspaces
from store.models import ApiKey, Workspace
from store.money import parse_money
from store.types import Role
from tests import factories as f

APPROVALS, ALERTS = "C0APPROVALS", "C0ALERTS"


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def test_a_key_asked_for_in_slack_is_made_in_the_linked_workspace_with_its_lease_and_guardrail(db, slack, slack_api, stub_workers, openrouter):
    fake = openrouter
    ws = f.workspace(db, "prod", "production")
    f.project(db, ws, "search", budget=parse_money("$40"))
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS, alerts=ALERTS)

    assert "Linking" in slack.command(admin, "/ai-workspace", "link search-team").json()["text"]
    stub_workers.settle()
    [linked] = [w for w in fake.workspaces.values() if w["slug"] == "search-team"]
    with db.session() as s:
        assert s.get(Workspace, ws).provider_ref == linked["id"]
    [said] = [m for m in slack_api.channel_messages(ALERTS) if "linked to OpenRouter" in m.text or "linked to OpenRouter" in str(m.blocks)]
    assert "no workspace budgets" in str(said.blocks)  # this organisation has none: said once, with the link

    slack.command(admin, "/ai-workspace", "models allow openai/gpt-4o-mini --project search")
    slack.command(dev, "/ai-key", "new search-bot --project search --limit $25")
    stub_workers.settle()
    [approval] = slack_api.channel_messages(APPROVALS)
    slack.click(admin, "request_approve", buttons(approval)["request_approve"], channel=APPROVALS, message_ts=approval.ts)
    stub_workers.settle()

    with db.session() as s:
        key = s.scalars(select(ApiKey)).one()
    at_openrouter = fake.keys[key.provider_ref]
    assert at_openrouter["workspace_id"] == linked["id"]
    # its lease: the tightest of its own $25 limit and the project's $40
    assert at_openrouter["limit"] == 25.0 and key.lease_ceiling_micros == parse_money("$25")
    [guardrail] = [g for g in fake.guardrails.values() if g["name"] == "purser-prod-search"]
    assert guardrail["allowed_models"] == ["openai/gpt-4o-mini"] and guardrail["workspace_id"] == linked["id"]
    secret = fake.secrets[key.provider_ref]
    with httpx.Client(base_url=fake.url + "/api/v1", headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.post("/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
        assert client.post("/chat/completions", json={"model": "anthropic/claude-3.5-haiku", "messages": [{"role": "user", "content": "hi"}]}).status_code == 403
    assert fake.invalid == [] and fake.unknown_fields == []


def test_an_openrouter_key_pasted_in_a_snippet_is_deleted_at_openrouter_too(db, slack, slack_api, stub_workers, openrouter):
    fake = openrouter
    ws = f.workspace(db, "dev", "development", provider="openrouter")
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    slack.command(dev, "/ai-key", "new scratch")
    stub_workers.settle()
    with db.session() as s:
        key = s.scalars(select(ApiKey)).one()
    secret = fake.secrets[key.provider_ref]
    fake.add_usage(key.provider_ref, 0.5)  # spent since the last sync: recorded before the key goes
    snippet = {"id": "F0SNIPPET", "mode": "snippet", "filetype": "python", "preview": f"import os\nOPENROUTER_API_KEY = '{secret}'\n"}
    slack.event({"type": "message", "subtype": "file_share", "channel": "C0GENERAL", "user": dev, "text": "my config", "ts": "1700000003.000100", "files": [snippet]})
    stub_workers.settle()
    assert key.provider_ref not in fake.keys  # deleted at OpenRouter, not only refused by Purser
    with db.session() as s:
        revoked = s.get(ApiKey, key.id)
        assert revoked.status_reason.startswith("leaked") and revoked.synced_usage_micros == parse_money("$0.50")
    assert secret not in repr([c.args for c in slack_api.calls])
