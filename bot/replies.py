"""What a handler answers, and the one place errors become words for the person who asked."""

from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlalchemy.exc import DBAPIError

from bot import texts
from bot.blocks.common import inert
from bot.commands.parser import UsageError
from store.errors import DomainError

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """An ephemeral answer, or a modal to open instead."""

    text: str = ""
    blocks: list[Block] = field(default_factory=list)
    modal: View | None = None

    def ack_kwargs(self) -> dict[str, Any]:
        body: dict[str, Any] = {"text": self.text[:3000], "response_type": "ephemeral"}
        if self.blocks:
            body["blocks"] = [b.to_dict() for b in self.blocks]
        return body


def guarded(command: str, handler: Callable[..., Reply], *args: Any) -> Reply:
    """Run a handler; store errors in the store's words, usage errors with the usage line, anything else with an id."""
    try:
        return handler(*args)
    except UsageError as exc:
        return Reply(f"{inert(str(exc))}\n{texts.USAGE.get(command, '')}".strip())
    except DomainError as exc:
        return Reply(inert(exc.message))
    except Exception:
        return Reply(unexpected())


def unexpected() -> str:
    """For the error being handled: the store out of reach (a restart, a network cut), or else a bug."""
    error_id = uuid.uuid4().hex[:10]
    exc = sys.exc_info()[1]
    if store_unreachable(exc):
        log.warning("store unreachable %s: %s", error_id, str(exc).splitlines()[0][:200])
        return texts.STORE_AWAY.format(error_id=error_id)
    log.exception("unexpected error %s", error_id)
    return texts.UNEXPECTED.format(error_id=error_id)


def store_unreachable(exc: BaseException | None) -> bool:
    # A dropped connection, one refused (no SQLSTATE), or SQLSTATE class 08 (connection) / 57P (shut down).
    if not isinstance(exc, DBAPIError):
        return False
    state = getattr(exc.orig, "sqlstate", "")
    return exc.connection_invalidated or state is None or str(state).startswith(("08", "57P"))


def error_text(exc: BaseException) -> str:
    """As mrkdwn: the store's and the parser's words may quote what was typed."""
    if isinstance(exc, (DomainError, UsageError)):
        return inert(error_words(exc))
    return unexpected()


def error_words(exc: BaseException) -> str:
    """As plain text, for a modal's field errors (Slack shows those verbatim)."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, UsageError):
        return str(exc)
    return unexpected()
