"""POST /v1/leaks: other scanners (gitleaks, trufflehog, relayed GitHub secret-scanning alerts) report what they found.

Body: ``{"source": "<where it was seen, a URL>", "candidates": ["<secret or a line holding one>", …]}``
with the same bearer token as /v1/usage. Each candidate is scanned as a message is; a
Purser key found is revoked at once (store.leaks), as if pasted into Slack. The answer
counts what was done and never echoes a candidate.
"""

from __future__ import annotations

from store import leak_scan, leaks

MAX_CANDIDATES = 500
MAX_CANDIDATE = 8192  # characters: a line of a log or a file, not the whole file


def report(db, body) -> tuple[dict, int]:
    """The answer to a parsed body, and its status."""
    candidates = body.get("candidates") if isinstance(body, dict) else None
    source = body.get("source") if isinstance(body, dict) else None
    if not isinstance(candidates, list) or not candidates or not all(isinstance(c, str) for c in candidates):
        return {"error": {"code": "no_candidates", "message": "send {\"source\": \"<url>\", \"candidates\": [\"…\"]} with at least one string"}}, 400
    if len(candidates) > MAX_CANDIDATES or any(len(c) > MAX_CANDIDATE for c in candidates):
        return {"error": {"code": "too_large", "message": f"send at most {MAX_CANDIDATES} candidates of at most {MAX_CANDIDATE} characters"}}, 413
    if source is not None and (not isinstance(source, str) or len(source) > 500):
        return {"error": {"code": "bad_source", "message": "source is where the candidates were seen: a URL of at most 500 characters"}}, 400
    hashes: list[str] = []
    vendors: set[str] = set()
    for candidate in candidates:
        found = leak_scan.scan(candidate)
        hashes += found.secret_hashes
        vendors.update(found.vendors)
    outcome = db.run(leaks.report_leak, hashes, leaks.Source(url=source, reporter="api")) if hashes else leaks.Outcome()
    return {"revoked": len(outcome.revoked), "already_revoked": len(outcome.again), "unknown": outcome.unknown, "other_vendors": sorted(vendors)}, 200
