"""Talking to OpenRouter's management API: the management key, the HTTP client, and what each answer means.

Every failure leaves here as a ProviderError whose text a person may read: it says what
went wrong and what to do, and never holds the management key or a key's secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from store.money import MICROS_PER_DOLLAR
from store.types import utcnow
from workers.providers.base import PermanentProviderError, TransientProviderError

DEFAULT_URL = "https://openrouter.ai/api/v1"
#: what an OpenRouter secret looks like, so one echoed in an error message never reaches a person
SECRET = re.compile(r"sk-or-[A-Za-z0-9_-]+")
#: a listing that runs longer than this is a server that never says "no more" (100,000 keys at 100 a page)
MAX_PAGES = 1000
_CHECK = f"the operator should check that OPENROUTER_API_URL points at OpenRouter's API ({DEFAULT_URL})."
CHECK_URL = _CHECK[0].upper() + _CHECK[1:]


def usd(micros: int | None) -> float | None:
    # OpenRouter speaks USD numbers; micro-dollars convert exactly through Decimal.
    return None if micros is None else float(Decimal(micros) / MICROS_PER_DOLLAR)


def micros(value: Any) -> int:
    return int((Decimal(str(value or 0)) * MICROS_PER_DOLLAR).to_integral_value())


def clean_management_key(raw: str | None) -> str:
    """The management key without surrounding whitespace; refused when what is left cannot be an HTTP header.

    A key pasted with its newline would otherwise fail every call as "could not reach
    OpenRouter" and be retried for ever. The message names the setting, never the key.
    """
    key = (raw or "").strip()
    if not key:
        raise PermanentProviderError("OPENROUTER_MANAGEMENT_KEY is not set: the operator has to configure it before OpenRouter keys can be made.")
    if not all("!" <= ch <= "~" for ch in key):
        raise PermanentProviderError(
            "OPENROUTER_MANAGEMENT_KEY holds a space, a line break, a control character or a character that is not plain ASCII "
            "inside it, so it cannot be sent to OpenRouter. The operator should copy the management key from "
            "OpenRouter again and set it as one unbroken line."
        )
    return key


def amount_micros(value: Any, what: str) -> int:
    """A USD amount from an answer, in micro-dollars; anything but a number is an answer Purser cannot read."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise unreadable(what)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise unreadable(what) from None
    if not amount.is_finite():
        raise unreadable(what)
    return int((amount * MICROS_PER_DOLLAR).to_integral_value())


def unreadable(what: str) -> TransientProviderError:
    """OpenRouter answered, but not in the shape its API document gives: worth another try, then the operator's look."""
    return TransientProviderError(f"OpenRouter's answer ({what}) was not in the shape of its API, so Purser could not read it; it will try again. If this keeps happening, {_CHECK}")


def field(answer: Any, name: str, what: str) -> Any:
    if not isinstance(answer, dict) or name not in answer:
        raise unreadable(what)
    return answer[name]


def data_of(answer: Any, what: str) -> dict[str, Any]:
    """The ``data`` object most answers wrap their result in."""
    data = field(answer, "data", what)
    if not isinstance(data, dict):
        raise unreadable(what)
    return data


class OpenRouterHTTP:
    """One management key, one client, and the reading of every status OpenRouter answers with."""

    def __init__(self, management_key: str, base_url: str, timeout: float) -> None:
        self._key = clean_management_key(management_key)
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"},
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"<OpenRouterHTTP {self._client.base_url}>"  # never the management key

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The parsed answer; None for OpenRouter's own "not found" when ``missing_ok``."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise TransientProviderError("OpenRouter did not answer in time.") from None
        except httpx.LocalProtocolError:
            # Refused before anything was sent (a header h11 will not write): no retry mends that.
            raise PermanentProviderError(
                "Purser could not send its request to OpenRouter: a request header was refused before sending. "
                "The operator should check OPENROUTER_MANAGEMENT_KEY for stray characters."
            ) from None
        except httpx.UnsupportedProtocol:
            raise PermanentProviderError(f"OPENROUTER_API_URL is not an http(s) address. {CHECK_URL}") from None
        except httpx.TransportError as exc:
            raise TransientProviderError(f"Could not reach OpenRouter ({type(exc).__name__}).") from None
        status = response.status_code
        if status < 300:
            return self._json(response, f"{status} to {method} /{path}")
        if status == 404:
            if not _openrouter_error(response):
                # Some other server's "not found" (a wrong address): taking it for "already gone"
                # would report every revocation done while the keys stay live.
                raise PermanentProviderError(f"The server at OPENROUTER_API_URL answered 404 with a page that is not OpenRouter's API. {CHECK_URL}")
            if missing_ok:
                return None
        message = self._error_message(response)
        if status == 429 or status >= 500:
            raise TransientProviderError(f"OpenRouter answered {status}: {message}", retry_after=_retry_after(response))
        # 403 also answers a feature the organisation's plan lacks (workspace budgets): only
        # a 401, or a 403 that names the management key, is about the key.
        if status == 401 or (status == 403 and "management key" in message.lower()):
            raise PermanentProviderError(
                f"OpenRouter refused Purser's management key ({status}: {message}). The operator should check OPENROUTER_MANAGEMENT_KEY.", status
            )
        raise PermanentProviderError(f"OpenRouter refused the request ({status}: {message}).", status)

    def pages(self, path: str, params: dict[str, Any], *, what: str, ident: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a listing, page by page, each once.

        Ends at an empty page (or, where ``limit`` is asked for, a short one). A page made
        only of items already seen is a server ignoring ``offset``; one partly seen is a
        listing that shifted while read (a key made meanwhile), and its repeats are skipped.
        """
        seen: set[str] = set()
        offset = 0
        for _ in range(MAX_PAGES):
            query = {**params, "offset": offset} | ({"limit": limit} if limit else {})
            page = field(self.call("GET", path, params=query), "data", f"a list of {what}")
            if not isinstance(page, list) or not all(isinstance(item, dict) and isinstance(item.get(ident), str) for item in page):
                raise unreadable(f"a list of {what}")
            if not page:
                return
            fresh = [item for item in page if item[ident] not in seen]
            if not fresh:
                raise PermanentProviderError(
                    f"OpenRouter answered the same {what} for offset {offset} as before: the server does not page, so Purser stopped reading. {CHECK_URL}"
                )
            seen.update(item[ident] for item in fresh)
            yield from fresh
            if limit and len(page) < limit:
                return
            offset += len(page)
        raise PermanentProviderError(f"Listing {what} at OpenRouter did not end after {MAX_PAGES} pages, so Purser stopped reading. {CHECK_URL}")

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        if not response.content:
            return {}
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise unreadable(f"{what}, not JSON") from None

    def _error_message(self, response: httpx.Response) -> str:
        # The message goes into the action's error, the audit log and the requester's DM.
        try:
            message = str(response.json()["error"]["message"])
        except Exception:
            message = response.reason_phrase or "no details"
        return SECRET.sub("sk-or-…", message.replace(self._key, "[management key]"))[:300]


def _openrouter_error(response: httpx.Response) -> bool:
    """Whether the answer is OpenRouter's error body, ``{"error": {"code": …, "message": …}}``."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and error.get("code") == response.status_code and isinstance(error.get("message"), str)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None
