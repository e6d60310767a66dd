"""Small pieces every message uses: literal text, money, mentions, bars."""

from __future__ import annotations

import re
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from store.money import format_money

#: what mrkdwn would turn into formatting, code or a live link
_MARKUP = re.compile(r"[*_~`]|://|www\.", re.I)


def escape(text: str) -> str:
    """Slack's three entities (https://api.slack.com/reference/surfaces/formatting#escaping):
    defuses <!channel>, <@U…> and <http…|…>. Done once, on the way out."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lit(text: object, limit: int = 300) -> str:
    """User-supplied text made inert in mrkdwn: no mentions, links or formatting, and every
    character as typed, so what is shown can be copied back into a command.

    & < > are escaped; text that mrkdwn would format or link (``*`` ``_`` ``~`` `````,
    a URL) is shown in a code span, where Slack formats and links nothing.
    """
    shown = str(text if text is not None else "")
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return _span(shown) if _MARKUP.search(shown) else escape(shown)


def _span(text: str) -> str:
    # A backtick would end the span, and Slack has no escape for it: the one character shown as
    # a look-alike (ˋ). Names Purser asks people to type back cannot contain one.
    inside = escape(text).replace("`", "ˋ")
    return f"```{inside}```" if "\n" in inside else f"`{inside}`"


_ECHO = re.compile(r"“(.*)”", re.S)  # greedy: a ” typed inside the quote must not end it
_CODE_SPAN = re.compile(r"(`[^`\n]+`)")
_ENTITY = re.compile(r"&(?!(?:amp|lt|gt);)")


def inert(message: str) -> str:
    """A message that may quote what someone typed (a store error, a usage line), made safe as mrkdwn.

    Its own `code` spans stay as they are, and & < > are escaped (an entity already there is
    kept, so text already passed through lit() comes out unchanged); whatever stands in “…”
    (how the store echoes input) is shown as lit() shows it.
    """
    text = _ENTITY.sub("&amp;", message).replace("<", "&lt;").replace(">", "&gt;")
    echo = _ECHO.search(text)
    if echo is None or not _MARKUP.search(echo.group(1)) or _CODE_SPAN.fullmatch(echo.group(1)):
        return text
    inside = echo.group(1).replace("`", "ˋ")
    return f"{text[: echo.start()]}“`{inside}`”{text[echo.end() :]}"


def code(text: object) -> str:
    """A short identifier (a key, project or workspace name, an error code) shown as code, exactly as typed."""
    return f"`{escape(str(text if text is not None else '')[:80]).replace('`', 'ˋ')}`"


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


def yes_no(block_id: str, value: object, yes: tuple[str, str], no: tuple[str, str], *, no_style: str | None = None) -> ActionsBlock:
    """The one pair of buttons Purser asks with (Approve/Deny, Accept/Decline): ``(label, action_id)`` each."""
    return ActionsBlock(
        block_id=block_id,
        elements=[
            ButtonElement(text=yes[0], action_id=yes[1], value=str(value), style="primary"),
            ButtonElement(text=no[0], action_id=no[1], value=str(value), style=no_style),
        ],
    )
