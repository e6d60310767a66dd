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
from bot.parser import UsageError
from store.errors import DomainError

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """An ephemeral answer, or a modal to open instead."""

    text: str = ""
    blocks: list[Block] = field(default_factory=list)
    modal: View | None = None

    def ack_kwargs(self) -> dict[str, Any]:
        body: dict[str, Any] = {"text": self.text[:TEXT_LIMIT], "response_type": "ephemeral"}
        if self.blocks:
            body["blocks"] = [b.to_dict() for b in self.blocks]
        elif len(self.text) > SECTION_LIMIT:  # one section holds 3,000 characters: the rest goes in more, never cut silently
            body["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in sections(self.text)]
        return body


#: Slack's limits (https://api.slack.com/reference/block-kit/blocks#section, chat.postMessage's text)
SECTION_LIMIT, MAX_BLOCKS, TEXT_LIMIT = 3000, 50, 40000


def sections(text: str) -> list[str]:
    """Long text in pieces of whole lines that each fit a section; what cannot be shown is said to be missing."""
    chunks, current = [], ""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        line = line[:SECTION_LIMIT]
        if current and len(current) + 1 + len(line) > SECTION_LIMIT:
            if len(chunks) == MAX_BLOCKS - 2:
                chunks.append(current)
                chunks.append(f"… and {len(lines) - i} more lines Slack cannot show in one message.")
                return chunks
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    return [*chunks, current]


def guarded(command: str, handler: Callable[..., Reply], *args: Any) -> Reply:
    """Run a handler; store errors in the store's words, usage errors with the usage line, anything else with an id."""
    try:
        return handler(*args)
    except UsageError as exc:
        return Reply(f"{inert(str(exc))}\n{texts.USAGE.get(command, '')}".strip())
    except DomainError as exc:
        return Reply(inert(error_words(exc)))
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
        return f"{exc.message} {texts.SEE[exc.see]}" if exc.see in texts.SEE else exc.message
    if isinstance(exc, UsageError):
        return str(exc)
    return unexpected()
