"""Turn a slash command's text into words and options, or a usage message — never an exception.

Slack escapes command text (https://api.slack.com/reference/surfaces/formatting#escaping):
mentions, channels, e-mails and links arrive as `<@U123|ada>`, `<#C123|alerts>`,
`<mailto:a@b.co|a@b.co>`, `<https://x.co|x.co>`, and a typed `&`, `<`, `>` as `&amp;`, `&lt;`,
`&gt;`. A word that is one reference becomes its plain id or address; references inside free
text become the text a person reads (`@ada`, `#alerts`, the link); the entities are decoded
last, once. What comes out is what was typed, and is escaped once on the way out.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")
_MAILTO = re.compile(r"^<mailto:([^|>]+)(?:\|[^>]*)?>$")
_LINK = re.compile(r"^<([^|>]+)\|([^>]*)>$")
#: ``approvals=<#C123|ai-approvals>``: a name given a value Slack escaped
_ASSIGNED = re.compile(r"^([A-Za-z][\w-]*=)(<[^>]+>)$")
#: any reference inside free text
_REFERENCE = re.compile(r"<([^<>]*)>")
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
_ENTITY = re.compile(r"&(?:lt|gt|amp);")
MAX_TEXT = 2000


class UsageError(Exception):
    """The text does not fit the command; the message says how to write it."""


@dataclass
class Parsed:
    words: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    def word(self, i: int, default: str | None = None) -> str | None:
        return self.words[i] if i < len(self.words) else default


def normalise(token: str) -> str:
    assigned = _ASSIGNED.match(token)
    if assigned:
        return assigned.group(1) + normalise(assigned.group(2))
    for pattern in (_USER, _CHANNEL, _MAILTO):
        m = pattern.match(token)
        if m:
            return m.group(1)
    m = _LINK.match(token)
    if m:  # Slack may autolink things like e-mails or domains: keep what was typed
        return unescape(m.group(2) or m.group(1))
    return unescape(_REFERENCE.sub(_as_read, token))


def unescape(text: str) -> str:
    """Slack's three entities decoded, once (``&amp;lt;`` is a typed ``&lt;``)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], text)


def _as_read(ref: re.Match) -> str:
    """A reference inside free text, as the person who typed it read it."""
    target, _, label = ref.group(1).partition("|")
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):  # <!here>, <!subteam^S123|@team>, <!date^…|fallback>
        return label or "@" + target[1:].split("^")[0]
    if target.startswith("mailto:"):
        return label or target[len("mailto:") :]
    return target if not label or _bare(target) == label else f"{label} ({target})"


def _bare(url: str) -> str:
    return re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.I).rstrip("/")


def split(text: str) -> list[str]:
    if len(text) > MAX_TEXT:
        raise UsageError(f"That is {len(text)} characters; commands take at most {MAX_TEXT}.")
    # Slack turns straight quotes into curly ones on some clients. NUL can be in no store column.
    text = text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'").replace("\x00", "")
    try:
        return [normalise(t) for t in shlex.split(text)]
    except ValueError:
        raise UsageError("A quote is not closed. Put text with spaces in \"double quotes\".") from None


def parse(text: str, *, options: dict[str, str], flags: dict[str, str] | None = None) -> Parsed:
    """``options`` and ``flags`` map every spelling (``-w``, ``--workspace``) to a name."""
    flags = flags or {}
    parsed = Parsed()
    tokens = split(text or "")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, _, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in options:
            if inline:
                value = inline
            elif i + 1 < len(tokens):
                i += 1
                value = tokens[i]
            else:
                raise UsageError(f"`{name}` needs a value after it.")
            parsed.options[options[name]] = value
        elif name in flags:
            parsed.flags.add(flags[name])
        elif token.startswith("--") or (token.startswith("-") and len(token) == 2 and token[1].isalpha()):
            raise UsageError(f"“{token[:30]}” is not an option of this command.")
        else:
            parsed.words.append(token)
        i += 1
    return parsed


WORKSPACE_OPTIONS = {"-w": "workspace", "--workspace": "workspace"}
