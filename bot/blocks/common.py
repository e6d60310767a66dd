"""Small pieces every message uses: literal text, money, mentions, bars."""

from __future__ import annotations

import re
from datetime import datetime

from slack_sdk.models.blocks import ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from store.money import format_money

_FORMATTING = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})


def lit(text: object, limit: int = 300) -> str:
    """User-supplied text made inert in mrkdwn: no mentions, links or formatting.

    Slack has no escape for * _ ~ `, so they are swapped for look-alikes; & < > are
    entity-escaped as Slack documents, which defuses <!channel>, <@U…> and <http…|…>.
    """
    shown = str(text if text is not None else "")
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    shown = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return shown.translate(_FORMATTING)


_ENTITY = re.compile(r"&(?!(?:amp|lt|gt);)")
_ECHO = re.compile(r"“.*”", re.S)  # greedy: a ” typed inside the quote must not end it
_CODE_SPAN = re.compile(r"(`[^`\n]+`)")


def inert(message: str) -> str:
    """A message that may quote what someone typed (a store error, a usage line), made safe as mrkdwn.

    Its own `code` spans stay as they are; elsewhere mentions, links and formatting are
    defused, and whatever stands in “…” (how the store echoes input) is shown literally.
    Text already passed through lit() comes out unchanged.
    """
    text = _ENTITY.sub("&amp;", message).replace("<", "&lt;").replace(">", "&gt;")
    echo = _ECHO.search(text)
    if echo is None:
        return _outside_code(text)
    return _outside_code(text[: echo.start()]) + echo.group(0).translate(_FORMATTING) + _outside_code(text[echo.end() :])


def _outside_code(text: str) -> str:
    parts = _CODE_SPAN.split(text)
    return "".join(part if i % 2 else part.translate(_FORMATTING) for i, part in enumerate(parts))


def code(text: object) -> str:
    """A short identifier shown as code; backticks inside are neutralised so it cannot break out."""
    return f"`{lit(text, 80).replace('ˋ', '')}`"


def mention(user_id: str | None) -> str:
    if not user_id or not user_id.isalnum():
        return "someone"
    return f"<@{user_id}>"


def money(micros: int | None) -> str:
    return "no limit" if micros is None else format_money(micros)


def when(at: datetime | None) -> str:
    return "—" if at is None else f"{at:%Y-%m-%d %H:%M} UTC"


def bar(spent: int, limit: int | None, width: int = 10) -> str:
    """A text bar: ▓▓▓▓▓▓░░░░ 62%."""
    if not limit:
        return "no limit"
    share = spent / limit
    filled = min(width, int(share * width))
    return "▓" * filled + "░" * (width - filled) + f" {int(share * 100)}%"


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=text[:150], emoji=True))


def section(markdown: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=markdown[:3000]))


def fields(pairs: list[tuple[str, str]]) -> SectionBlock:
    return SectionBlock(fields=[MarkdownTextObject(text=f"*{label}*\n{value}"[:2000]) for label, value in pairs[:10]])


def context(markdown: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=markdown[:3000])])


def divider() -> DividerBlock:
    return DividerBlock()
