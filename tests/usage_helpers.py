"""Spend reported for a member's named key, as a gateway or `purser usage record` would."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from store import keys
from store.money import parse_money
from store.permissions import Actor
from store.ingest import UsageIn, ingest_usage


def record(db, owner_id: str, key_name: str, amount: str, workspace: str = "prod"):
    from store.workspaces import find_workspace

    def find(s):
        ws = find_workspace(s, workspace)
        return keys.find_key(s, Actor.slack(owner_id), ws.id, key_name).id

    key_id = db.run(find)
    event = UsageIn(f"test-{uuid.uuid4().hex}", key_id, parse_money(amount), datetime.now(timezone.utc))
    return db.run(ingest_usage, [event])
