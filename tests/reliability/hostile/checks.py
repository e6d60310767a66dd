"""Reading everything Purser said back, in replies and through the fake Slack Web API."""

from __future__ import annotations

import os
import re
from typing import Iterable, Iterator

from store.models import AuditEvent

SIGNING_SECRET = "hostile-signing-secret"
TEAM = "T0PURSER"
# A Redis database of its own, and a namespace per test (below).
REDIS_URL = os.environ.get("PURSER_HOSTILE_REDIS_URL", "redis://127.0.0.1:6379/12")

#: what must never reach Slack as markup: each would ping, link or notify if it did
RAW = ("<!channel>", "<!here>", "<!everyone>", "<https://evil", "<@U123>")
#: what an answer must never show: the words of an exception, or an unexpected error
LEAKS = ("Traceback", "Exception", "Error(", "sqlalchemy", "psycopg", "KeyError", "TypeError", "ValueError", "AttributeError", "File \"", "error id", "went wrong")


def settle(workers, timeout: float = 120) -> None:
    """Wait for the workers; when they do not settle, say which actions are stuck and why."""
    from dramatiq.errors import QueueJoinTimeout

    try:
        workers.settle(timeout)
    except (AssertionError, QueueJoinTimeout):  # the Redis broker's join raises the latter
        from sqlalchemy import select

        from store.models import Action
        from store.types import ActionStatus

        with workers.rt.db.session() as s:
            stuck = [(a.kind, a.attempts, a.claimed_until, a.run_after, (a.error or "")[:200]) for a in s.scalars(select(Action).where(Action.status == ActionStatus.PENDING))]
        raise AssertionError(f"actions still pending: {stuck}") from None


# -- reading what Purser said -----------------------------------------------------------

#: "response_url": a command's answer posted by a worker (the double records it with this name)
_SENDS = ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url")
_VIEWS = ("views.open", "views.update", "views.publish")


def mrkdwn(node) -> Iterator[str]:
    """Every mrkdwn text object in a Block Kit structure."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from mrkdwn(value)
    elif isinstance(node, list):
        for item in node:
            yield from mrkdwn(item)


def said_to_slack(slack_api, since: int = 0) -> list[str]:
    """Every text Purser sent through the Web API since call number ``since``: message texts (rendered as
    mrkdwn when there are no blocks, and shown in notifications) and every mrkdwn object."""
    out = []
    for call in slack_api.calls[since:]:
        if call.method in _SENDS:
            out.append(str(call.args.get("text") or ""))
            out.extend(mrkdwn(call.args.get("blocks") or []))
        elif call.method in _VIEWS:
            out.extend(mrkdwn(call.args.get("view") or {}))
    return out


def said_in_reply(answer) -> list[str]:
    """The mrkdwn of a reply as the person sees it: its text and blocks.

    ``answer`` is what ``SlackSender`` returns: the app's HTTP answer, or, for a command a
    worker answered through its response_url, what was posted there. Every test reads
    replies through here (or ``reply_text``), so how replies travel is known in one place.
    """
    body = _body(answer)
    if not isinstance(body, dict):
        return [answer.text]
    return [str(body.get("text") or ""), *mrkdwn(body.get("blocks") or [])]


def reply_text(answer) -> str:
    """A reply's text, blocks included, as one string to search."""
    return "\n".join(said_in_reply(answer))


def errors_in_reply(answer) -> list[str]:
    """A modal's field errors: plain text, shown verbatim under the field."""
    body = _body(answer)
    return [str(v) for v in ((body.get("errors") or {}) if isinstance(body, dict) else {}).values()]


def _body(answer):
    if not answer.content:
        return {}
    try:
        return answer.json()
    except ValueError:
        return None


_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)


def assert_inert(texts: Iterable[str], raw: Iterable[str] = RAW, marks: Iterable[str] = ()) -> None:
    """No raw mention or link sequence anywhere; no user formatting ``marks`` (like ``*PWN*``) outside code."""
    problems = []
    for text in texts:
        problems += [f"{sequence!r} reached Slack as markup: {text[:300]!r}" for sequence in raw if sequence in text]
        plain = _CODE.sub("", text)
        problems += [f"{mark!r} would render as formatting: {text[:300]!r}" for mark in marks if mark in plain]
    assert not problems, "\n".join(dict.fromkeys(problems))


def assert_no_leak(texts: Iterable[str]) -> None:
    problems = [f"{word!r} shown to a user: {text[:300]!r}" for text in texts for word in LEAKS if word in text]
    assert not problems, "\n".join(dict.fromkeys(problems))


def denials(db, workspace_id: int) -> list[AuditEvent]:
    from sqlalchemy import select

    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == workspace_id, AuditEvent.outcome == "denied").order_by(AuditEvent.seq)))
