"""What each Slack Web API error that retrying will not mend means, in plain words, and what fixes it.

The codes are Slack's own (https://api.slack.com/methods/chat.postMessage#errors and the
other methods Purser calls). The code is kept, in a code span, so it can be searched for.
"""

from __future__ import annotations

#: error code → (what went wrong, what fixes it)
PERMANENT: dict[str, tuple[str, str]] = {
    "not_in_channel": ("Purser is not a member of that channel", "invite it there with `/invite @Purser`, or bind another channel with `/ai-workspace channels`"),
    "channel_not_found": (
        "that channel does not exist any more, or it is private and Purser was never added to it",
        "bind another channel with `/ai-workspace channels`, or add Purser to this one",
    ),
    "is_archived": ("that channel is archived", "unarchive it, or bind another channel with `/ai-workspace channels`"),
    "user_not_found": ("Slack does not know that person (they may have left the workspace)", "check who was meant and try again"),
    "user_disabled": ("that person's Slack account is deactivated", "nothing to do for them; an Admin may remove them with `/ai-team remove`"),
    "cannot_dm_bot": ("that user is an app, and apps cannot receive Purser's messages", "name a person instead"),
    "invalid_auth": ("Slack no longer accepts Purser's bot token", "the operator must reinstall Purser in Slack and set the new `SLACK_BOT_TOKEN`"),
    "token_revoked": ("Purser's bot token was revoked", "the operator must reinstall Purser in Slack and set the new `SLACK_BOT_TOKEN`"),
    "account_inactive": ("the Slack account behind Purser's token is deactivated", "the operator must reinstall Purser in Slack and set the new `SLACK_BOT_TOKEN`"),
    "missing_scope": ("Purser's Slack app lacks a permission it needs", "the operator must reinstall Purser from `manifest.yml`, which asks for every scope"),
    "restricted_action": ("this Slack workspace's settings forbid Purser from posting there", "a Slack admin must allow apps to post in that channel"),
    "invalid_blocks": ("Slack refused the layout of Purser's message", "this is a fault in Purser: tell the operator"),
    "msg_too_long": ("Purser's message was longer than Slack allows", "this is a fault in Purser: tell the operator"),
}


#: errors that mean one person cannot be reached: a message to several people skips them, and the rest still get it
PERSON_UNREACHABLE = frozenset({"user_not_found", "user_disabled", "cannot_dm_bot"})


def explain(error: str) -> str:
    """One plain sentence about a Slack error, with its fix and the code to search for."""
    what, fix = PERMANENT.get(error, ("Slack refused the call", "try again later; if it keeps failing, tell the operator"))
    return f"{what} (Slack's error `{error}`). To fix it: {fix}."
