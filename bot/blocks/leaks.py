"""What people hear when a key is seen where it should not be. Never the secret: its prefix at most."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.blocks.common import code, context, mention, section

REPLACE = "key_replace"


def _where(channel: str | None, url: str | None) -> str:
    if channel:
        return f"in <#{channel}>" if channel[:1] in ("C", "G") else "in a direct message"
    return f"at {url}" if url else "outside Slack"


def thread_reply(name: str, prefix: str) -> tuple[str, list[Block]]:
    text = f"This message holds a Purser API key ({prefix}…). Purser revoked it; please delete the message."
    return text, [
        section(f"🔒 This message holds a Purser API key ({code(prefix + '…')}, key {code(name)}). Purser has revoked it: it no longer works anywhere."),
        context("Please delete the message, and any copy of the key. Keys are handed out once, through Purser's Reveal button, so they need never be pasted."),
    ]


def owner_dm(key_id: int, name: str, workspace: str, channel: str | None, url: str | None, permalink: str | None) -> tuple[str, list[Block]]:
    where = _where(channel, url)
    text = f"Your key {name} in {workspace} was posted {where}; Purser revoked it."
    blocks: list[Block] = [
        section(f"🔒 Your key {code(name)} in {code(workspace)} was posted {where}" + (f" (<{permalink}|the message>)" if permalink else "") + ", so Purser revoked it at once: anyone could have copied it."),
        context("A replacement has the same name, project and limit, and follows the workspace's approval policy."),
        ActionsBlock(block_id=f"leak:{key_id}", elements=[ButtonElement(text="Issue a replacement", action_id=REPLACE, value=str(key_id), style="primary")]),
    ]
    return text, blocks


def replacement_asked(name: str) -> tuple[str, list[Block]]:
    return f"A replacement for {name} was asked for.", [section(f"✅ A replacement for {code(name)} was asked for; a message with its Reveal button follows once it is made.")]


def admins_told(name: str, owner: str | None, workspace: str, channel: str | None, url: str | None, permalink: str | None, poster: str | None) -> tuple[str, list[Block]]:
    where = _where(channel, url)
    by = f" by {mention(poster)}" if poster else ""
    text = f"Key {name} in {workspace} was posted {where}; Purser revoked it."
    return text, [
        section(f"🔒 Key {code(name)} of {mention(owner)} in {code(workspace)} was posted {where}{by}" + (f" (<{permalink}|the message>)" if permalink else "") + ". Purser revoked it at once and offered its owner a replacement."),
    ]


def foreign_warning(vendors: list[str]) -> str:
    what = " and ".join(vendors)
    return f"⚠️ Your message looks like it holds a credential ({what}). Purser cannot revoke it: rotate it with its vendor now, and delete the message."


def foreign_audit(vendors: list[str], channel: str | None, poster: str | None, permalink: str | None) -> tuple[str, list[Block]]:
    what = " and ".join(vendors)
    text = f"A message {_where(channel, None)} looks like it holds a credential ({what})."
    by = f" by {mention(poster)}" if poster else ""
    return text, [
        section(f"⚠️ A message {_where(channel, None)}{by}" + (f" (<{permalink}|link>)" if permalink else "") + f" looks like it holds a credential: {what}."),
        context("It is not a Purser key, so Purser revoked nothing: whoever owns it should rotate it with its vendor. The poster was told."),
    ]
