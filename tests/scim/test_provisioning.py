"""What the identity provider's SCIM requests do to people, over real HTTP: deactivation stops keys, group pushes give roles, caps hold."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from store import members, scim, scim_roles
from store.models import Action, AuditEvent, Invitation, Member
from store.models_scim import ScimToken
from store.permissions import Actor
from store.secrets import hash_secret
from store.types import InvitationStatus, MemberStatus, Role, utcnow
from tests import factories as f
from tests.scim.conftest import SCIM_JSON

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

OKTA_DEACTIVATE = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
ENTRA_DEACTIVATE = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}


def scim_user(email: str, **more) -> dict:
    return {"schemas": [USER], "userName": email, "active": True, "emails": [{"value": email, "primary": True, "type": "work"}], **more}


def member_with_key(db, ws: int, email: str, role: Role = Role.DEVELOPER) -> tuple[Actor, str]:
    """A member Purser already knows (Slack id and e-mail), holding a live key."""
    uid = f.user_id()
    db.run(members.add_member, f.OPERATOR, ws, role=role, slack_user_id=uid, email=email)
    _, secret = f.key(db, ws, Actor.slack(uid), "bot")
    return Actor.slack(uid), secret


def authz(url: str, secret: str) -> int:
    return httpx.get(url + "/v1/authz", headers={"Authorization": f"Bearer {secret}"}).status_code


@pytest.mark.parametrize("deactivation", [OKTA_DEACTIVATE, ENTRA_DEACTIVATE], ids=["okta", "entra"])
def test_a_deactivation_patch_stops_the_persons_keys_and_reactivation_restores_nobody(db, served, provisioned, deactivation):
    ws, admin, client, made = provisioned
    dev, secret = member_with_key(db, ws, "dev@acme.com")
    created = client.post("/Users", json=scim_user("Dev@Acme.com", externalId="00u1"))
    assert created.status_code == 201 and created.headers["Content-Type"].startswith(SCIM_JSON), created.text
    user_id = created.json()["id"]
    assert created.json()["externalId"] == "00u1"
    assert authz(served, secret) == 200

    patched = client.patch(f"/Users/{user_id}", json=deactivation)
    assert patched.status_code in (200, 204), patched.text
    assert client.get(f"/Users/{user_id}").json()["active"] is False
    assert authz(served, secret) == 401  # the gateway refuses from the commit on

    with db.session() as s:
        member = s.scalars(select(Member).where(Member.slack_user_id == dev.slack_user_id)).one()
        assert member.status is MemberStatus.SUSPENDED
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.suspend")).one()
        assert event.actor == "system:scim:okta" and "identity provider" in event.details["reason"]
        assert s.scalars(select(Action).where(Action.kind == "member_suspended")).first() is not None  # the Admins are told

    # active=true again: nothing restores them but an Admin (docs/scim.md)
    again = client.patch(f"/Users/{user_id}", json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]})
    assert again.status_code in (200, 204)
    assert authz(served, secret) == 401


def test_delete_removes_the_member_and_revokes_their_keys(db, served, provisioned):
    ws, admin, client, made = provisioned
    dev, secret = member_with_key(db, ws, "leaver@acme.com")
    user_id = client.post("/Users", json=scim_user("leaver@acme.com")).json()["id"]
    assert client.delete(f"/Users/{user_id}").status_code == 204
    assert client.get(f"/Users/{user_id}").status_code == 404
    assert authz(served, secret) == 401
    with db.session() as s:
        assert s.scalars(select(Member.status).where(Member.slack_user_id == dev.slack_user_id)).one() is MemberStatus.REMOVED
        revoke = s.scalars(select(AuditEvent).where(AuditEvent.action == "key.revoke")).one()
        assert revoke.actor == "system:scim:okta"


@pytest.fixture
def slack_people(slack_api):
    """People added to the Slack double's directory for one test only (its server lives for the session)."""
    before = dict(slack_api.users)
    yield slack_api.users
    slack_api.users.clear()
    slack_api.users.update(before)


def test_a_group_push_makes_members_with_the_mapped_role(db, served, provisioned, stub_workers, slack_api, slack_people):
    ws, admin, client, made = provisioned
    db.run(scim_roles.map_group, admin, ws, "Engineering", "developer")
    slack_people["U0SCIMANA"] = {"email": "ana@acme.com", "name": "ana"}
    ana = client.post("/Users", json=scim_user("ana@acme.com")).json()["id"]
    bo = client.post("/Users", json=scim_user("bo@acme.com")).json()["id"]  # not in Slack yet
    group = client.post("/Groups", json={"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": ana}]})
    assert group.status_code == 201, group.text
    # Okta adds a member to a pushed group with a PATCH
    added = client.patch(f"/Groups/{group.json()['id']}", json={"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": bo, "display": "bo@acme.com"}]}]})
    assert added.status_code in (200, 204), added.text
    stub_workers.settle()

    with db.session() as s:
        joined = s.scalars(select(Member).where(Member.slack_user_id == "U0SCIMANA")).one()
        assert (joined.role, joined.status, joined.email) == (Role.DEVELOPER, MemberStatus.ACTIVE, "ana@acme.com")
        waiting = s.scalars(select(Invitation).where(Invitation.invitee_email == "bo@acme.com")).one()
        assert (waiting.status, waiting.role) == (InvitationStatus.PENDING, Role.DEVELOPER)
        again = s.scalars(select(Action).where(Action.kind == "scim_lookup", Action.status == "pending")).one()  # bo is looked for later
        assert again.run_after > utcnow() and again.payload["attempt"] == 1
    welcome = slack_api.channel_messages("D0SCIMANA")
    assert welcome and "Developer" in welcome[-1].text

    # bo appears in Slack: the next lookup lets him join
    slack_people["U0SCIMBO"] = {"email": "bo@acme.com", "name": "bo"}
    from workers.handlers.scim import scim_lookup
    from workers.perform import perform

    db.run(lambda s: setattr(s.get(Action, again.id), "run_after", utcnow()))
    perform(scim_lookup, again.id, stub_workers.rt)
    with db.session() as s:
        assert s.scalars(select(Member.role).where(Member.slack_user_id == "U0SCIMBO")).one() is Role.DEVELOPER
        assert s.scalars(select(Invitation.status).where(Invitation.invitee_email == "bo@acme.com")).one() is InvitationStatus.ACCEPTED

    # leaving the group ends the membership SCIM made
    removed = client.patch(f"/Groups/{group.json()['id']}", json={"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{ana}"]'}]})
    assert removed.status_code in (200, 204), removed.text
    with db.session() as s:
        assert s.scalars(select(Member.status).where(Member.slack_user_id == "U0SCIMANA")).one() is MemberStatus.REMOVED


def test_a_sixth_admin_through_scim_is_refused_and_the_admins_are_told(db, served, provisioned, stub_workers, slack_api):
    ws, admin, client, made = provisioned
    dev = Actor.slack(f.user_id())
    db.run(members.add_member, f.OPERATOR, ws, role=Role.DEVELOPER, slack_user_id=dev.slack_user_id, email="climber@acme.com")
    admins = [admin.slack_user_id]
    others = [f.member(db, ws, Role.ADMIN) for _ in range(4)]  # five Admins: the cap
    db.run(scim_roles.map_group, admin, ws, "Purser Admins", "admin")
    user_id = client.post("/Users", json=scim_user("climber@acme.com")).json()["id"]
    refused = client.post("/Groups", json={"schemas": [GROUP], "displayName": "Purser Admins", "members": [{"value": user_id}]})
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["schemas"] == [ERROR] and body["status"] == "409"
    assert "5 Admins" in body["detail"] and "Admins were told" in body["detail"]
    assert client.get("/Groups", params={"filter": 'displayName eq "Purser Admins"'}).json()["totalResults"] == 0  # nothing of the push applied
    stub_workers.settle()
    with db.session() as s:
        assert s.scalars(select(Member.role).where(Member.slack_user_id == dev.slack_user_id)).one() is Role.DEVELOPER
        denial = s.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).one()
        assert denial.actor == "system:scim:okta" and denial.action == "role.admin"
    for someone in [*admins, *(o.slack_user_id for o in others)]:
        told = slack_api.channel_messages("D" + someone[1:])
        assert told and "refused" in told[-1].text, someone


def test_filter_and_pagination(provisioned):
    ws, admin, client, made = provisioned
    for i in range(1, 6):
        assert client.post("/Users", json=scim_user(f"user{i}@acme.com")).status_code == 201
    found = client.get("/Users", params={"filter": 'userName eq "USER3@acme.com"'}).json()  # userName compares case-insensitively
    assert found["totalResults"] == 1 and found["Resources"][0]["userName"] == "user3@acme.com"
    assert client.get("/Users", params={"filter": 'userName eq "nobody@acme.com"'}).json()["totalResults"] == 0
    page = client.get("/Users", params={"startIndex": 2, "count": 2}).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [u["userName"] for u in page["Resources"]] == ["user2@acme.com", "user3@acme.com"]
    starts = client.get("/Users", params={"filter": 'userName sw "user"', "sortBy": "userName", "sortOrder": "descending", "count": 1}).json()
    assert starts["totalResults"] == 5 and starts["Resources"][0]["userName"] == "user5@acme.com"
    bad = client.get("/Users", params={"filter": 'userName eq'})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"
    taken = client.post("/Users", json=scim_user("User1@acme.com"))
    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness"


def test_a_wrong_token_is_refused_401_and_a_token_sees_only_its_workspace(db, served, provisioned):
    ws, admin, client, made = provisioned
    user_id = client.post("/Users", json=scim_user("someone@acme.com")).json()["id"]
    for header in ({"Authorization": "Bearer purser-scim-wrong"}, {}, {"Authorization": f"Basic {made.secret}"}):
        answer = httpx.get(served + "/scim/v2/Users", headers=header)
        assert answer.status_code == 401 and answer.json()["schemas"] == [ERROR], header
        assert answer.headers["Content-Type"].startswith(SCIM_JSON) and "Bearer" in answer.headers["WWW-Authenticate"]
    other = f.workspace(db, "other")
    other_admin = f.member(db, other, Role.ADMIN)
    theirs = db.run(scim.create_token, other_admin, other, "entra")
    elsewhere = httpx.get(served + f"/scim/v2/Users/{user_id}", headers={"Authorization": f"Bearer {theirs.secret}"})
    assert elsewhere.status_code == 404
    # two live at most: the third retires the oldest, which is refused from then on
    db.run(scim.create_token, admin, ws, "okta-2")
    third = db.run(scim.create_token, admin, ws, "okta-3")
    assert third.retired == ["okta"]
    assert client.get("/Users").status_code == 401


def test_the_token_is_kept_only_as_its_hash(db, provisioned):
    ws, admin, client, made = provisioned
    with db.session() as s:
        row = s.scalars(select(ScimToken).where(ScimToken.workspace_id == ws)).one()
        assert row.secret_hash == hash_secret(made.secret) and made.secret not in (row.prefix, row.name)
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "scim.token.create")).all()
        assert events and all(made.secret not in str(e.details) for e in events)
    viewer = f.member(db, ws, Role.VIEWER)
    from store.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        db.run(scim.create_token, viewer, ws, "sneaky")


def test_someone_provisioned_before_they_had_slack_joins_when_slack_says_team_join(db, served, provisioned, stub_workers, slack_api, slack_people):
    from bot import directory_events
    from store.workspaces import load_workspace

    ws, admin, client, made = provisioned
    db.run(scim_roles.map_group, admin, ws, "Engineering", "developer")
    cy = client.post("/Users", json=scim_user("cy@acme.com")).json()["id"]
    client.post("/Groups", json={"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": cy}]})
    stub_workers.settle()  # not in Slack: invited by e-mail, looked for again later
    slack_people["U0SCIMCY"] = {"email": "cy@acme.com", "name": "cy"}
    team = db.run(lambda s: load_workspace(s, ws).team_id)
    assert directory_events.team_joined(db, team, {"id": "U0SCIMCY", "team_id": team, "profile": {"email": "CY@acme.com"}}) == 1
    stub_workers.settle()  # at once, not at the next retry
    with db.session() as s:
        assert s.scalars(select(Member.role).where(Member.slack_user_id == "U0SCIMCY")).one() is Role.DEVELOPER
    assert directory_events.team_joined(db, team, {"id": "U0SCIMCY", "team_id": team, "profile": {"email": "cy@acme.com"}}) == 0
