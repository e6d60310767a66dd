"""What a handler answers, and the one place errors become words for the person who asked."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot import texts
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
        return Reply(f"{exc}\n{texts.USAGE.get(command, '')}".strip())
    except DomainError as exc:
        return Reply(exc.message)
    except Exception:
        return Reply(unexpected())


def unexpected() -> str:
    error_id = uuid.uuid4().hex[:10]
    log.exception("unexpected error %s", error_id)
    return texts.UNEXPECTED.format(error_id=error_id)


def error_text(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, UsageError):
        return str(exc)
    return unexpected()
