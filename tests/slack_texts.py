"""Command text as Slack sends it, from Slack's own documentation rather than from what Purser expects.

https://api.slack.com/interactivity/slash-commands (``should_escape: true``, as in manifest.yml)
and https://api.slack.com/reference/surfaces/formatting#escaping: a mention arrives as
``<@U…|name>``, a channel as ``<#C…|name>`` (``<#C…|>`` when the name is hidden), an e-mail as
``<mailto:a@b.co|a@b.co>``, a link as ``<https://…|…>`` or ``<https://…>``, ``@here`` and
``@channel`` as ``<!here>`` and ``<!channel>``, a user group as ``<!subteam^S…|@name>``; a typed
``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;`` and ``&gt;``. Clients also turn straight quotes
curly.

Each case is (what the person typed, what Slack sends, the words Purser must read). Used by the
parser's tests and by the end-to-end tests, so both read the same real formats.
"""

from __future__ import annotations

from typing import NamedTuple


class Word(NamedTuple):
    typed: str
    sent: str
    read: str


#: one word each, as a command argument
WORDS = [
    Word("@ada", "<@U0123ABCD|ada>", "U0123ABCD"),
    Word("@ada", "<@W0123ABCD|ada>", "W0123ABCD"),  # Enterprise Grid user ids start with W
    Word("#ai-approvals", "<#C0123ABCD|ai-approvals>", "C0123ABCD"),
    Word("#secret-room", "<#G0123ABCD|>", "G0123ABCD"),  # a private channel whose name Slack hides
    Word("approvals=#ai-approvals", "approvals=<#C0123ABCD|ai-approvals>", "approvals=C0123ABCD"),
    Word("alerts=#ai-alerts", "alerts=<#C0ALERTS9|ai-alerts>", "alerts=C0ALERTS9"),
    Word("ada@example.com", "<mailto:ada@example.com|ada@example.com>", "ada@example.com"),
    Word("example.com", "<http://example.com|example.com>", "example.com"),
    Word("https://example.com/a?b=1&c=2", "<https://example.com/a?b=1&amp;c=2>", "https://example.com/a?b=1&c=2"),
    Word("R&D", "R&amp;D", "R&D"),
    Word("<urgent>", "&lt;urgent&gt;", "<urgent>"),
    Word("&amp;", "&amp;amp;", "&amp;"),  # what was typed was an entity: decoded once, it stays one
    Word("snake_case_key", "snake_case_key", "snake_case_key"),
    Word("$1,500", "$1,500", "$1,500"),
]

#: free text (a reason): references read as a person reads them, entities decoded once
REASONS = [
    Word("see https://x R&D <urgent>", "see <https://x|x> R&amp;D &lt;urgent&gt;", "see https://x R&D <urgent>"),
    Word("ask @ada in #ops", "ask <@U0123ABCD|ada> in <#C0123ABCD|ops>", "ask @ada in #ops"),
    Word("@here it is down", "<!here> it is down", "@here it is down"),
    Word("cc @platform-team", "cc <!subteam^S0123ABCD|@platform-team>", "cc @platform-team"),
    Word("mail ada@example.com", "mail <mailto:ada@example.com|ada@example.com>", "mail ada@example.com"),
    Word("launch *week* _now_", "launch *week* _now_", "launch *week* _now_"),
]


def quoted(text: str, curly: bool = False) -> str:
    """Free text in one shell word, as people type it (some clients curl the quotes)."""
    return f"“{text}”" if curly else f'"{text}"'
