"""scim2-tester's RFC 7643/7644 checks against Purser's /scim/v2, over real HTTP."""

from __future__ import annotations

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

#: checks whose result is not a pass, each explained in docs/scim.md ("What scim2-tester says")
KNOWN = {}

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}


def test_scim2_tester_finds_every_check_passing(provisioned, served):
    ws, admin, client, made = provisioned
    http = httpx2.Client(base_url=served + "/scim/v2", headers={"Authorization": f"Bearer {made.secret}"}, timeout=10)
    results = check_server(SyncSCIMClient(http))
    http.close()
    report = [(r.resource_type, r.title, r.status.name, (r.reason or "")[:300] + (" DATA " + repr(r.data)[:1500] if r.status.name in ("ERROR", "CRITICAL", "DEVIATION") else "")) for r in results]
    for line in report:
        print(*line, sep=" | ")
    failing = [(rt, title, status, reason) for rt, title, status, reason in report if Status[status] not in PASSING and (rt, title) not in KNOWN]
    assert results and not failing, failing
