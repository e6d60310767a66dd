"""The `web` process: a WSGI app for a production server (gunicorn), in front of Bolt.

It checks Slack's signature itself (so the clock is injectable and the answers are
exactly 401 for a bad or stale signature and 400 for a malformed body, never 500),
serves `/healthz` for load balancers, and logs one line per request without secrets.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta
from typing import Callable
from urllib.parse import parse_qs

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from werkzeug.wrappers import Request, Response

from store import outbox, slack_access
from store.db import Database

log = logging.getLogger("purser.web")

MAX_BODY = 256 * 1024  # Slack's payloads are far smaller; anything bigger is not from Slack
Route = Callable[[Request], Response]


class WebApp:
    def __init__(self, db: Database, bolt_app, signing_secret: str, *, clock=None, health: Callable[[], dict[str, str]] | None = None) -> None:
        self.db = db
        self.slack = SlackRequestHandler(bolt_app)
        self.verifier = SignatureVerifier(signing_secret, clock=clock) if clock else SignatureVerifier(signing_secret)
        self.health = health or (lambda: {})
        self.routes: dict[tuple[str, str], Route] = {("GET", "/healthz"): self.healthz}
        self.mounts: dict[str, Route] = {}

    def route(self, method: str, path: str, handler: Route) -> None:
        self.routes[(method, path)] = handler

    def mount(self, prefix: str, handler: Route) -> None:
        """Every method and path under ``prefix`` to one handler (SCIM's /scim/v2/Users/<id> …)."""
        self.mounts[prefix.rstrip("/")] = handler

    def _handler(self, request: Request) -> Route | None:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            handler = next((h for p, h in self.mounts.items() if request.path == p or request.path.startswith(p + "/")), None)
        return handler

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request = Request(environ)
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:12]
        if request.path == "/slack/events" and request.method == "POST":
            status, response = self.slack_request(request, environ, start_response)
        else:
            handler = self._handler(request)
            response = handler(request) if handler else Response("not found\n", status=404)
            status = response.status_code
            response = response(environ, start_response)
        # One line per request is the access log (gunicorn's own is off). A gateway asks /v1/authz
        # before every model call and logs those calls itself: here only its refusals are news.
        level = logging.DEBUG if status == 200 and request.path == "/v1/authz" else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "%s %s %s %.1fms id=%s", request.method, request.path, status, (time.perf_counter() - started) * 1000, request_id)
        return response

    def slack_request(self, request: Request, environ, start_response):
        length = request.content_length or 0
        if length > MAX_BODY:
            return 413, Response("body too large\n", status=413)(environ, start_response)
        body = request.get_data(cache=True, as_text=False)
        if len(body) > MAX_BODY:
            return 413, Response("body too large\n", status=413)(environ, start_response)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, Response("body is not UTF-8\n", status=400)(environ, start_response)
        if not self._signed(body, dict(request.headers)):
            return 401, Response("invalid or stale signature\n", status=401)(environ, start_response)
        problem = malformed(body, request.mimetype)
        if problem:
            return 400, Response(problem + "\n", status=400)(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = status
            return start_response(status, headers, exc_info)

        # Bolt reads the body again from the stream we have consumed.
        import io

        body = for_bolt(body, request.mimetype)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        result = self.slack(environ, capture)
        return int(str(captured.get("status", "200")).split()[0]), result

    def _signed(self, body: bytes, headers: dict[str, str]) -> bool:
        # The verifier turns the timestamp header into an int: a junk one ("abc", "1e9") is
        # an unsigned request, not a server error.
        try:
            return self.verifier.is_valid_request(body, headers)
        except (ValueError, TypeError, OverflowError):
            return False

    def healthz(self, request: Request) -> Response:
        problems = self.health()
        status = 503 if problems else 200
        body = {"status": "down" if problems else "ok", "problems": problems}
        return Response(json.dumps(body), status=status, mimetype="application/json")


def malformed(body: bytes, mimetype: str) -> str | None:
    """What is wrong with a signed body Bolt cannot use, or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if mimetype == "application/json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return "body is not valid JSON"
        return None if isinstance(data, dict) else "body must be a JSON object"
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except (ValueError, RecursionError):
            return "payload is not valid JSON"
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return "payload must be an object with a type"
        if not isinstance(payload.get("user"), dict) or not isinstance(payload["user"].get("id"), str):
            return "payload has no user"
        return None
    if "command" in form:
        if not form.get("user_id", [""])[0]:
            return "command has no user_id"
        return None
    return "neither a command nor an interaction payload"


def for_bolt(body: bytes, mimetype: str) -> bytes:
    """Bolt (1.30) reads any form body containing the word "payload" as an interaction, and a command
    that merely says it (`/ai-audit payload`, a channel named #payload-team) loses its whole body.
    Spelled %70ayload the word reaches the form parser unchanged and no longer misleads the guess."""
    if mimetype == "application/json" or b"payload" not in body or "payload" in parse_qs(body.decode("utf-8"), keep_blank_values=True):
        return body
    return body.replace(b"payload", b"%70ayload")


#: an action due this long ago that no worker holds means nobody is consuming the queue
STALLED = timedelta(minutes=2)


def health_checks(db: Database, redis_url: str | None) -> Callable[[], dict[str, str]]:
    client = None
    if redis_url:
        import redis

        # One client (and its pool) for every probe: a load balancer asks often.
        client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)

    def check() -> dict[str, str]:
        problems = {}
        try:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            problems["store"] = f"not answering ({type(exc).__name__})"
        if client is not None:
            try:
                client.ping()
            except Exception as exc:
                problems["broker"] = f"Redis not answering ({type(exc).__name__})"
        if "store" not in problems:
            try:
                with db.session() as s:
                    gone = slack_access.lost(s)
                    waiting = outbox.stalled(s, STALLED)
                if gone is not None:
                    problems["slack"] = f"Slack revoked Purser's access ({gone.why} at {gone.revoked_at:%Y-%m-%d %H:%M} UTC): reinstall Purser in Slack and set the new SLACK_BOT_TOKEN"
                if waiting:
                    problems["workers"] = f"{waiting} action(s) waiting over {STALLED.seconds // 60} minutes: are the workers running?"
            except Exception as exc:
                problems["workers"] = f"could not count waiting actions ({type(exc).__name__})"
        return problems

    return check
