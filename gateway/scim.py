"""/scim/v2: the SCIM 2.0 service provider (RFC 7643/7644) an identity provider (Okta, Entra ID) provisions people through.

The protocol is scim2-server's (``ScimHandler`` / ``ScimService`` on scim2-models): routing,
validation, PUT and PATCH, filters, paging, ETags, discovery endpoints and SCIM Error
bodies. Purser adds the bearer token — one per workspace, made with
`/ai-workspace scim token` or `purser scim token`, looked up by its sha256 — and the storage
(``gateway.scim_storage``) that reads and writes through the store. docs/scim.md says what
each operation does to people.
"""

from __future__ import annotations

import json
import logging
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Patch,
    PayloadTooLargeException,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    User,
)
from scim2_server.applications.base import BaseApplication
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from werkzeug.wrappers import Request, Response

from gateway.clientip import _ip, parse_networks
from gateway.scim_storage import PurserStorage
from store import scim, scim_people
from store.db import Database

log = logging.getLogger("purser.scim")

PREFIX = "/scim/v2"
MAX_BODY = 1024 * 1024  # a group push of thousands of members fits; no bulk endpoint
MAX_RESULTS = 200

CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),  # Purser has no passwords: people sign in through Slack
    sort=Sort(supported=True),
    etag=ETag(supported=True),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="OAuth Bearer Token",
            description="A workspace's SCIM token: /ai-workspace scim token, or purser scim token <workspace>",
            primary=True,
        )
    ],
)

#: What the identity providers send that the strict reading refuses: Entra ID removes a group's
#: member with a ``value`` rather than a path filter, and adds to a filtered path that
#: matches nothing yet; both are read as Entra means them. Unknown attributes are dropped
#: rather than failing a whole push (an Okta profile may carry custom ones).
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def provider() -> ScimProvider:
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)],
        config=CONFIG,
        policy=POLICY,
    )


class ScimApi(BaseApplication):
    """The SCIM endpoints as one werkzeug handler, mounted on the web app under ``/scim/v2``."""

    def __init__(self, db: Database, *, trusted_proxies: str = "127.0.0.1/32,::1/128") -> None:
        described = provider()
        # the service passed in, not built by BaseApplication: that would read SCIM2_SERVER_SECRET from the
        # environment (only purser/settings.py reads it); no cursor paging is announced, so no secret is needed
        super().__init__(described, ScimService(described))
        self.db = db
        self.trusted = parse_networks(trusted_proxies)

    def __call__(self, request: Request) -> Response:
        scim_request = ScimRequest(
            method=request.method,
            base_url=self._base_url(request),
            path=self.split_path(request.path.removeprefix(PREFIX)),
            query={k: v for k, v in request.args.items()},
            headers=list(request.headers.items()),
            body=request.get_data(cache=False)[: MAX_BODY + 1] if (request.content_length or 0) <= MAX_BODY else b"",
        )
        try:
            if (request.content_length or 0) > MAX_BODY:
                raise PayloadTooLargeException(detail=f"Send at most {MAX_BODY // 1024} KiB per request.")
            response = self._serve(scim_request)
        except Exception as exc:
            response = self.handle_exception(scim_request, exc)
        response = self.finalize_response(scim_request, response)
        body = b"" if response.body is None else json.dumps(response.body).encode()
        return Response(body, status=int(response.status), headers=response.headers)

    def _serve(self, request: ScimRequest) -> ScimResponse:
        grant = self._grant(request) if self.needs_auth(request) else None
        storage = PurserStorage(self.db, grant, self.provider, self._refused)
        return ScimHandler(self.service, storage).handle(request)

    def _grant(self, request: ScimRequest) -> scim.Grant:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedException(detail="Send the workspace's SCIM token as Authorization: Bearer <token> (make one with /ai-workspace scim token).")
        grant = self.db.run(scim.grant_for, token.strip())
        if grant is None:
            raise UnauthorizedException(detail="This SCIM token is not valid: it was revoked or replaced, or its workspace was deleted. Make a new one with /ai-workspace scim token.")
        return grant

    def _refused(self, grant: scim.Grant, detail: str) -> None:
        """The rules refused a push (a role cap): the Admins hear it by DM (workers/handlers/scim.py)."""
        try:
            self.db.run(scim_people.tell_admins, grant.workspace_id, detail, grant.actor.label)
        except Exception:  # the refusal still reaches the identity provider, and is in the audit log
            log.exception("could not tell the Admins of workspace %s about a refused SCIM request", grant.workspace_id)

    def _base_url(self, request: Request) -> str:
        """The URL the identity provider used: a trusted proxy's X-Forwarded-Proto/Host are believed, nobody else's."""
        scheme, host = request.scheme, request.host
        peer = _ip(request.remote_addr or "")
        if peer is not None and any(peer in net for net in self.trusted):
            scheme = (request.headers.get("X-Forwarded-Proto") or scheme).split(",")[0].strip()
            host = (request.headers.get("X-Forwarded-Host") or host).split(",")[0].strip()
        return f"{scheme}://{host}{PREFIX}"

