"""Provider sync: a provider's cumulative spend per key, turned into usage events for ingest."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.ingest import IngestResult, UsageIn, ingest_usage
from store.models import ApiKey, Workspace
from store.types import utcnow


def sync_provider_usage(s: Session, provider: str, usages: Sequence[tuple[str, int]], now: datetime | None = None) -> IngestResult:
    """Turn a provider's cumulative per-key usage into usage events for the increase since the last sync.

    The event's external id is the cumulative figure itself, so syncing twice adds nothing.
    """
    asked_at, now = now, now or utcnow()
    cumulative = dict(usages)
    if not cumulative:
        return IngestResult()
    events: list[UsageIn] = []
    refs = sorted(cumulative)
    # Workspaces first, in id order, as every other operation does, then the keys.
    owning = sorted(set(s.scalars(select(ApiKey.workspace_id).where(ApiKey.provider == provider, ApiKey.provider_ref.in_(refs)))))
    s.execute(select(Workspace.id).where(Workspace.id.in_(owning)).order_by(Workspace.id).with_for_update(key_share=True))
    for chunk in (refs[i : i + 1000] for i in range(0, len(refs), 1000)):
        for key in s.scalars(select(ApiKey).where(ApiKey.provider == provider, ApiKey.provider_ref.in_(chunk)).order_by(ApiKey.id).with_for_update()):
            current = cumulative[key.provider_ref]
            if current > key.synced_usage_micros:
                events.append(UsageIn(f"{provider}:{key.provider_ref}:{current}", key.id, current - key.synced_usage_micros, now))
                key.synced_usage_micros = current
    # Ingest stamps the events itself once it holds the workspaces (unless an instant was named).
    return ingest_usage(s, events, asked_at) if events else IngestResult()
