"""scim2-tester's RFC 7643/7644 checks against Purser's /scim/v2, over real HTTP (docs/scim.md, "What scim2-tester says")."""

from __future__ import annotations

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

#: (resource type, check) whose result may be other than a pass, each explained in docs/scim.md: none today
KNOWN: dict[tuple[str | None, str], str] = {}

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def test_scim2_tester_finds_every_check_passing(provisioned, served):
    ws, admin, client, made = provisioned
    with httpx2.Client(base_url=served + "/scim/v2", headers={"Authorization": f"Bearer {made.secret}"}, timeout=10) as http:
        results = check_server(SyncSCIMClient(http))
    for r in results:  # shown when the test fails: every check's result
        detail = f" {r.data!r}"[:1500] if r.status not in PASSING else ""
        print(r.resource_type, r.title, r.status.name, (r.reason or "").replace("\n", " ")[:300] + detail, sep=" | ")
    failing = [(r.resource_type, r.title, r.status.name, r.reason) for r in results if r.status not in PASSING and (r.resource_type, r.title) not in KNOWN]
    assert not failing, failing
    checked = {(r.resource_type, r.title) for r in results}
    for resource_type in ("User", "Group"):  # the CRUD and PATCH checks ran for both, not only discovery
        for title in ("object_creation", "object_query", "object_replacement", "object_deletion", "check_add_attribute", "check_replace_attribute", "check_remove_attribute", "search_with_attributes"):
            assert (resource_type, title) in checked, (resource_type, title)
    assert len(results) >= 130
