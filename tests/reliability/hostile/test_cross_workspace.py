"""Other workspaces' ids in commands and buttons: refused, audited, and never a word about a workspace the asker is not in."""

from __future__ import annotations

import pytest

from store import workspaces
from tests import factories as f
from tests.reliability.hostile.checks import denials, reply_text, said_to_slack, settle
from tests.reliability.hostile.world import OUTSIDER, block_actions, snapshot

# Hypothesis warns when the global `random` changes while it draws an example; here that is
# dramatiq's Redis consumer threads (a maintenance roll on each fetch), never the strategies.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")


# -- other workspaces' ids -----------------------------------------------------------------

CROSS_COMMANDS = [
    ("/ai-key", "new spy -w zulu-secret"),
    ("/ai-key", "new spy --project moonshot -w zulu-secret"),
    ("/ai-key", "new -w zulu-secret"),
    ("/ai-key", "list -w zulu-secret"),
    ("/ai-key", "list --all -w zulu-secret"),
    ("/ai-key", "revoke zbot -w zulu-secret"),
    ("/ai-key", "rotate #{z_key} -w zulu-secret"),
    ("/ai-key", "disable {z_key} -w zulu-secret"),
    ("/ai-invite", "U0SPY0001 --role admin -w zulu-secret"),
    ("/ai-team", "list -w zulu-secret"),
    ("/ai-team", "role <@{z_dev}|d> admin -w zulu-secret"),
    ("/ai-team", "role U0NOBODY1 admin -w zulu-secret"),
    ("/ai-team", "remove <@{z_dev}|d> -w zulu-secret"),
    ("/ai-team", "remove U0NOBODY1 -w zulu-secret"),
    ("/ai-team", "leave -w zulu-secret"),
    ("/ai-budget", "show -w zulu-secret"),
    ("/ai-budget", "set moonshot $1 -w zulu-secret"),
    ("/ai-budget", "set newthing $1 -w zulu-secret"),
    ("/ai-budget", 'request moonshot $500 --reason "please" -w zulu-secret'),
    ("/ai-budget", "cap $1 -w zulu-secret"),
    ("/ai-budget", 'cap $1 --reason "please" -w zulu-secret'),
    ("/ai-budget", 'pause moonshot --reason "x" -w zulu-secret'),
    ("/ai-budget", 'pause nothing --reason "x" -w zulu-secret'),
    ("/ai-budget", "resume moonshot -w zulu-secret"),
    ("/ai-credits", "balance -w zulu-secret"),
    ("/ai-credits", "add $5 -w zulu-secret"),
    ("/ai-credits", 'add $5 --reason "pls" -w zulu-secret'),
    ("/ai-usage", "-w zulu-secret"),
    ("/ai-usage", "--project moonshot -w zulu-secret"),
    ("/ai-audit", "recent -w zulu-secret"),
    ("/ai-audit", "verify -w zulu-secret"),
    ("/ai-audit", "export csv -w zulu-secret"),
    ("/ai-workspace", "use zulu-secret"),
    ("/ai-workspace", "policy auto -w zulu-secret"),
    ("/ai-workspace", "channels approvals=C0SPY -w zulu-secret"),
    ("/ai-workspace", "allowlist -w zulu-secret"),
    ("/ai-workspace", "allowlist add 0.0.0.0/0 -w zulu-secret"),
    ("/ai-workspace", "allowlist remove 10.0.0.0/8 -w zulu-secret"),
    ("/ai-workspace", "templates -w zulu-secret"),
    ("/ai-workspace", "templates developer $1000 -w zulu-secret"),
]


def cross_commands(db, world, slack, slack_api, workers, users) -> None:
    db.run(workspaces.add_allowlist, f.OPERATOR, world.zulu, "10.0.0.0/8")
    zulu_words = world.zulu_words(db)
    posted = len(slack_api.channel_messages("C0ZULUAPPR"))
    problems = []
    for user in users:
        for command, template in CROSS_COMMANDS:
            text = template.format(z_key=world.z_key, z_dev=world.z_dev)
            before, denied = snapshot(db, world.zulu), len(denials(db, world.zulu))
            since = len(slack_api.calls)
            answer = slack.command(user, command, text)
            reply = reply_text(answer)
            told = [reply, *said_to_slack(slack_api, since)]
            leaked = [w for w in zulu_words if any(w in t for t in told)]
            if answer.status_code != 200 or leaked:
                problems.append(f"{user} {command} {text}: {answer.status_code} leaked {leaked}: {reply[:200]!r}")
            if snapshot(db, world.zulu) != before:
                problems.append(f"{user} {command} {text}: changed zulu")
            if len(denials(db, world.zulu)) <= denied:
                problems.append(f"{user} {command} {text}: no denial audited ({reply[:120]!r})")
    settle(workers)
    assert len(slack_api.channel_messages("C0ZULUAPPR")) == posted and not slack_api.channel_messages("C0ZULUALRT")
    assert not problems, "\n".join(problems)


def test_commands_naming_another_workspace_are_refused_audited_and_say_nothing_of_it(db, world, slack, slack_api, workers):
    """An admin of alpha, the likeliest to try: every command; the long run adds a developer and an outsider."""
    cross_commands(db, world, slack, slack_api, workers, [world.admin])


@pytest.mark.slow
def test_commands_naming_another_workspace_by_every_kind_of_stranger(db, world, slack, slack_api, workers):
    cross_commands(db, world, slack, slack_api, workers, [world.admin, world.dev, world.viewer, OUTSIDER])


def cross_buttons(db, world, slack, slack_api, workers, users, places) -> None:
    zulu_words = world.zulu_words(db)
    clicks = [
        ("request_approve", world.z_request),
        ("request_deny", world.z_request),
        ("key_reveal", world.z_key),
        ("invitation_accept", world.z_invitation),
        ("invitation_decline", world.z_invitation),
    ]
    problems = []
    for user in users:
        for action, target in clicks:
            for where in places:
                before, denied = snapshot(db, world.zulu), len(denials(db, world.zulu))
                since = len(slack_api.calls)
                answer = slack.interaction(block_actions(user, action, str(target), where=where))
                told = said_to_slack(slack_api, since)
                leaked = [w for w in zulu_words if any(w in t for t in told)]
                if answer.status_code != 200 or leaked or not told:
                    problems.append(f"{user} {action} {target} ({where}): {answer.status_code} leaked {leaked}; told {told[:2]}")
                if snapshot(db, world.zulu) != before:
                    problems.append(f"{user} {action} {target}: changed zulu")
                if len(denials(db, world.zulu)) <= denied:
                    problems.append(f"{user} {action} {target}: no denial audited ({told[:1]})")
    settle(workers)
    assert not problems, "\n".join(problems)


def test_buttons_carrying_another_workspaces_ids_are_refused_audited_and_say_nothing_of_it(db, world, slack, slack_api, workers):
    cross_buttons(db, world, slack, slack_api, workers, [world.admin, OUTSIDER], ["channel"])


@pytest.mark.slow
def test_buttons_carrying_another_workspaces_ids_from_everywhere(db, world, slack, slack_api, workers):
    cross_buttons(db, world, slack, slack_api, workers, [world.admin, world.dev, world.viewer, OUTSIDER], ["channel", "home", "nowhere"])
