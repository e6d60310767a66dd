"""Small pieces every message uses: literal text, money, mentions, bars."""

from __future__ import annotations

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
