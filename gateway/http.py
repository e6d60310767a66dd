"""The gateway endpoints: GET /v1/authz (nginx auth_request, Envoy ext_authz), POST /v1/usage and POST /v1/leaks."""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from collections import Counter
from datetime import datetime, timezone

from werkzeug.wrappers import Request, Response

from gateway.cache import KeyCache
from gateway.clientip import client_address, parse_networks
from gateway import leaks
from store.authz import decide, load_key_state, record_refusals
from store.db import Database
from store.errors import DomainError
from store.pricing import cost_of, usd_to_micros
from store.secrets import hash_secret
from store.types import utcnow
from store.ingest import UsageIn, ingest_usage

log = logging.getLogger("purser.gateway")

MAX_USAGE_BODY = 2 * 1024 * 1024
MAX_EVENTS = 1000
FLUSH_EVERY = 10.0


class Gateway:
    def __init__(self, db: Database, *, trusted_proxies: str = "127.0.0.1/32,::1/128", ingest_tokens: str = "") -> None:
        self.db = db
        self.cache = KeyCache(lambda h: db.run(load_key_state, h))
        self.trusted = parse_networks(trusted_proxies)
        self.tokens = [t.strip() for t in ingest_tokens.split(",") if t.strip()]
        self._refusals: Counter = Counter()
        self._refusals_lock = threading.Lock()
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="authz-refusals", daemon=True)
        self._flusher.start()

    def routes(self):
        return {("GET", "/v1/authz"): self.authz, ("POST", "/v1/authz"): self.authz, ("HEAD", "/v1/authz"): self.authz, ("POST", "/v1/usage"): self.usage, ("POST", "/v1/usage/litellm"): self.litellm, ("POST", "/v1/leaks"): self.leaks}

    # -- /v1/authz -------------------------------------------------------------------

    def authz(self, request: Request) -> Response:
        secret = _bearer(request.headers.get("Authorization"))
        if not secret:
            return _refusal(401, "missing_key", "Send the API key as Authorization: Bearer <key>.")
        state = self.cache.get(hash_secret(secret))
        client = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), request.headers.get("X-Real-IP"), self.trusted)
        # X-Purser-Model: the model the call names, when the gateway can read it from the body.
        decision = decide(state, client, request.headers.get("X-Purser-Project"), model=request.headers.get("X-Purser-Model"))
        if decision.status == 200:
            return Response(status=200, headers=decision.headers)
        if state is not None:
            with self._refusals_lock:
                self._refusals[(state.workspace_id, state.key_id, decision.reason)] += 1
        return _refusal(decision.status, decision.reason, decision.message)

    def _flush_loop(self) -> None:
        while not self._stopping.wait(FLUSH_EVERY):
            self.flush_refusals()

    def close(self) -> None:
        """Stop counting into the store, and record what was counted since the last flush."""
        self._stopping.set()
        self.flush_refusals()

    def flush_refusals(self) -> None:
        with self._refusals_lock:
            counts, self._refusals = self._refusals, Counter()
        if counts:
            try:
                self.db.run(record_refusals, counts)
            except Exception:
                log.exception("could not record %d gateway refusal(s)", sum(counts.values()))

    # -- /v1/usage -------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        offered = _bearer(request.headers.get("Authorization")) or ""
        # Several tokens may be valid at once, so one can be rotated out without downtime.
        return bool(offered) and any(hmac.compare_digest(offered.encode(), t.encode()) for t in self.tokens)

    def _body(self, request: Request):
        """The JSON body of a request bearing an ingest token; or the answer refusing it."""
        if not self._authorised(request):
            return None, _json({"error": {"code": "unauthorized", "message": "send a valid ingest token as Authorization: Bearer <token>"}}, 401)
        if (request.content_length or 0) > MAX_USAGE_BODY:
            return None, _json({"error": {"code": "too_large", "message": f"send at most {MAX_USAGE_BODY // 1024} KiB per request"}}, 413)
        try:
            return json.loads(request.get_data(cache=False, as_text=False)[: MAX_USAGE_BODY + 1]), None
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting deeper than any event needs
            return None, _json({"error": {"code": "invalid_json", "message": "the body is not valid JSON"}}, 400)

    def usage(self, request: Request) -> Response:
        body, error = self._body(request)
        if error:
            return error
        events = body.get("events") if isinstance(body, dict) else body
        return self._ingest(events, _event_id, _event)

    def litellm(self, request: Request) -> Response:
        """LiteLLM's generic API logger: a list of StandardLoggingPayload."""
        body, error = self._body(request)
        return error or self._ingest(body if isinstance(body, list) else [body], _litellm_id, _litellm_event)

    def leaks(self, request: Request) -> Response:
        """Other scanners' findings (gateway/leaks.py)."""
        body, error = self._body(request)
        return error or _json(*leaks.report(self.db, body))

    def _ingest(self, events, ident, parse) -> Response:
        if not isinstance(events, list) or not events:
            return _json({"error": {"code": "no_events", "message": "send {\"events\": [ … ]} with at least one event"}}, 400)
        if len(events) > MAX_EVENTS:
            return _json({"error": {"code": "too_many", "message": f"send at most {MAX_EVENTS} events per request"}}, 413)
        # One verdict per event, by its place in the batch: two events may share an external_id.
        results: list[dict | None] = [None] * len(events)
        parsed: list[UsageIn] = []
        places: list[int] = []
        for i, raw in enumerate(events):
            external_id = ident(raw) if isinstance(raw, dict) else ""
            shown = external_id or f"#{i}"
            try:
                if not external_id:
                    raise DomainError("external_id is required (it makes reporting idempotent)")
                if "\x00" in external_id:
                    raise DomainError("external_id must not contain NUL")
                secret_hash, amount, model, prompt, completion, at = parse(raw)
                state = self.cache.get(secret_hash)
                if state is None:
                    raise DomainError("unknown key")
                parsed.append(UsageIn(external_id, state.key_id, amount, at, model, prompt, completion))
                places.append(i)
            except DomainError as exc:
                results[i] = {"external_id": shown, "result": "refused", "reason": exc.message}
            except (TypeError, ValueError, AttributeError):
                results[i] = {"external_id": shown, "result": "refused", "reason": "malformed event"}
        if parsed:
            # reported from outside the provider: a leased key's workspace is topped up at once (store.ingest)
            outcome = self.db.run(ingest_usage, parsed, top_up_leases=True)
            for place, e, (verdict, reason) in zip(places, parsed, outcome.verdicts):
                results[place] = {"external_id": e.external_id, "result": verdict, **({"reason": reason} if reason else {})}
        return _json({"results": results}, 200)


def _event_id(raw: dict) -> str:
    return str(raw.get("external_id") or "")[:200]


def _litellm_id(raw: dict) -> str:
    return f"litellm:{raw['id']}"[:200] if raw.get("id") else ""


def _event(raw) -> tuple:
    if not isinstance(raw, dict):
        raise DomainError("each event must be an object")
    if raw.get("key_hash"):
        secret_hash = _key_hash(raw["key_hash"])
    elif raw.get("key"):
        secret_hash = hash_secret(str(raw["key"]).strip())
    else:
        raise DomainError("name the key: key (the secret) or key_hash (its sha256)")
    model = _model(raw.get("model"))
    prompt, completion = _tokens(raw.get("prompt_tokens")), _tokens(raw.get("completion_tokens"))
    if raw.get("amount_usd") is not None:
        amount = usd_to_micros(raw["amount_usd"])
    elif model and prompt is not None and completion is not None:
        amount = cost_of(model, prompt, completion)
    else:
        raise DomainError("send amount_usd, or model with prompt_tokens and completion_tokens")
    return secret_hash, amount, model, prompt, completion, _when(raw.get("occurred_at"))


def _litellm_event(raw) -> tuple:
    if not isinstance(raw, dict):
        raise DomainError("each payload must be an object")
    metadata = raw.get("metadata") or {}
    if not metadata.get("user_api_key_hash"):
        raise DomainError("metadata.user_api_key_hash is missing")
    secret_hash = _key_hash(metadata["user_api_key_hash"])
    amount = usd_to_micros(raw.get("response_cost") or 0)
    return secret_hash, amount, _model(raw.get("model")), _tokens(raw.get("prompt_tokens")), _tokens(raw.get("completion_tokens")), _when(raw.get("endTime"))


# What a gateway reports is checked here, before it reaches a query or a column: a NUL byte,
# a model that is an object, a token count past 2^31 would otherwise fail in PostgreSQL (a 500).
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _key_hash(value) -> str:
    text = str(value).strip().lower()
    if not _SHA256.fullmatch(text):
        raise DomainError("key_hash must be the key's sha256 as 64 hex digits")
    return text


def _model(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise DomainError("model must be a string")
    return value[:120]


def _tokens(value) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < 2**31:
        raise DomainError("token counts must be whole numbers from 0")
    return value


def _when(value) -> datetime:
    if value is None or value == "":
        return utcnow()
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), timezone.utc)
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise DomainError("occurred_at must carry a time zone (…Z or +00:00)")
        return at.astimezone(timezone.utc)
    except (OverflowError, OSError, ValueError):  # years past 9999, before 1, NaN
        raise DomainError("occurred_at is not a time Purser can record") from None


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _refusal(status: int, reason: str, message: str) -> Response:
    body = {"error": {"code": reason, "message": message}}
    # The message may carry what an admin typed (a pause reason): only printable ASCII goes in a header,
    # so a line break cannot end it (werkzeug would refuse the response: a 500 on every call).
    shown = "".join(c if " " <= c <= "~" else "?" for c in message[:300])
    return Response(json.dumps(body), status=status, headers={"X-Purser-Refusal": reason, "X-Purser-Message": shown}, mimetype="application/json")


def _json(body, status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
