"""A leased key's owner told of its warnings and its end (store.leases decides when)."""

from __future__ import annotations

from datetime import datetime

from bot.blocks.leases import lease_notice_dm
from store import leases, outbox
from store.outbox import Claimed
from workers.handlers import completes
from workers.handlers.keys import apply_key_states
from workers.runtime import Runtime


def lease_notice(rt: Runtime, a: Claimed) -> None:
    kind, ends_at = a.payload["kind"], datetime.fromisoformat(a.payload["ends_at"])
    if kind == "expired":
        # A provider that keeps keys' state disables it as its standing now says (OpenRouter ended it itself already).
        apply_key_states(rt, [a.payload["key_id"]])
    with rt.db.session() as s:
        notice = leases.lease_notice(s, a.payload["key_id"], kind, ends_at)
    # Extended or revoked since the clock found it due: the warning no longer says anything true.
    if rt.slack is None or notice.owner is None or not notice.still_due:
        rt.db.run(outbox.complete, a.id)
        return
    text, blocks = lease_notice_dm(notice)
    # One ref per key, notice and end: a retry edits rather than posts again.
    rt.slack.dm(f"lease:{notice.key_id}:{kind}:{ends_at:%Y%m%dT%H%M%S}", notice.owner, text, blocks, also=completes(a))
