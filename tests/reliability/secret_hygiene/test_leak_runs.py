"""Secret hygiene of the leak guard: every way a secret reaches Purser to be revoked leaves it nowhere.

The leak guard reads text people wrote, and that text is full of secrets: Purser's keys
(pasted into a channel, edited into a message, sent in a DM, reported by a scanner
through ``POST /v1/leaks`` and by an operator through ``purser leak report``), other
vendors' credentials, and strings shaped like a Purser key that are none. A whole run
over HTTP with the workers feeds it all of them, then searches every log record (every
logger at DEBUG), every call to the fake Slack, every answer the app and the CLI gave and
every row of every table. A revealed key may appear only in its one reveal modal; what
is no key must not survive even as a 20-character run, since a run that long is most of
a secret and could be put together again from a few of them.
"""

from __future__ import annotations

import json
import secrets
import string

from sqlalchemy import select
from typer.testing import CliRunner

from purser.cli import app as cli
from store.models import ApiKey, AuditEvent
from store.types import KeyStatus
from tests.slack_requests import wait_for

from tests.reliability.secret_hygiene.search import Deployment, buttons, database_text, dm, hits, is_reveal_call, log_text, reveal_modals, slack_text
from tests.reliability.secret_hygiene.test_whole_runs import Team, ready_dm, reveal, team

TAG = "k1"
GENERAL, AUDIT = "C0K1GENERAL", "C0K1AUDIT"  # a channel Purser is in; the team's audit channel (test_whole_runs.team names them after TAG)
RUN = 20  # the longest piece of a secret that may be left anywhere: shorter than any, longer than a key's displayed prefix
NAMES = ("paste-bot", "edit-bot", "dm-bot", "api-bot", "cli-bot")


def message(channel: str, user: str, text: str, ts: str) -> dict:
    return {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "channel_type": "channel" if channel[0] == "C" else "im"}


def foreign_tokens() -> dict[str, str]:
    """Fresh for each run, so a hit cannot come from elsewhere: what detect-secrets knows as GitHub's and AWS's."""
    alnum = string.ascii_letters + string.digits
    return {
        "GitHub token": "ghp_" + "".join(secrets.choice(alnum) for _ in range(36)),
        "AWS access key": "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
    }


def no_key() -> str:
    """Shaped exactly like a key Purser mints (store.secrets.mint_local_secret), yet no key's."""
    return "sk-purser-" + secrets.token_urlsafe(32)


def refused(d: Deployment, secret: str) -> bool:
    return d.gateway("GET", "/v1/authz", secret).status_code == 401


def issue_and_reveal(d: Deployment, slack_api, t: Team) -> dict[str, str]:
    """One key per way of leaking it, each revealed once by its owner."""
    for name in NAMES:
        assert "Approved" in d.slack.command(t.dev, "/ai-key", f"new {name} --limit $5").json()["text"]
    d.settle()
    return {name: reveal(d, slack_api, t, t.dev, ready_dm(slack_api, t.dev, name)) for name in NAMES}


def leak_everywhere(d: Deployment, t: Team, keys: dict[str, str], fake: str, foreign: dict[str, str]) -> str:
    """Every way in, once each; returns what the CLI printed."""
    slack = d.slack
    # What is no key first, alone: nothing is done about it, so nothing shows when it was
    # handled; the waits for the keys after it give it that time many times over.
    slack.event(message(GENERAL, t.dev, f"is this one still live? {fake}", "1700000100.000100"))
    # pasted into a channel
    slack.event(message(GENERAL, t.dev, f"here you go: {keys['paste-bot']}", "1700000100.000200"))
    wait_for(lambda: refused(d, keys["paste-bot"]), timeout=5)
    # edited into a message that held none
    slack.event(message(GENERAL, t.dev, "the config is below", "1700000100.000300"))
    edit = {
        "type": "message", "subtype": "message_changed", "channel": GENERAL, "ts": "1700000100.000400", "channel_type": "channel",
        "message": {"type": "message", "user": t.dev, "text": f"the config is below: OPENAI_API_KEY={keys['edit-bot']}", "ts": "1700000100.000300", "edited": {"user": t.dev, "ts": "1700000100.000400"}},
        "previous_message": {"type": "message", "user": t.dev, "text": "the config is below", "ts": "1700000100.000300"},
    }
    slack.event(edit)
    wait_for(lambda: refused(d, keys["edit-bot"]), timeout=5)
    # sent to Purser in a DM
    slack.event(message(dm(t.dev), t.dev, f"is this right? {keys['dm-bot']}", "1700000100.000500"))
    wait_for(lambda: refused(d, keys["dm-bot"]), timeout=5)
    # other vendors' credentials, and the string that is no key again beside them
    slack.event(message(GENERAL, t.dev, f"creds: {foreign['GitHub token']} / {foreign['AWS access key']} / {fake}", "1700000100.000600"))
    # a scanner's report, with what is no key and another vendor's among the candidates
    candidates = [f"config.py:3: KEY = '{keys['api-bot']}'", fake, f"token: {foreign['GitHub token']}"]
    answer = d.gateway("POST", "/v1/leaks", d.config.ingest_token, json={"source": "https://ci.example/jobs/9", "candidates": candidates})
    assert answer.json() == {"revoked": 1, "already_revoked": 0, "unknown": 1, "other_vendors": ["GitHub Token"]}
    assert refused(d, keys["api-bot"])
    # the operator's command line, candidates on standard input (never as arguments: a shell keeps those)
    ran = CliRunner().invoke(cli, ["leak", "report", "--source", "https://ci.example/jobs/10"], input=f"leaked: {keys['cli-bot']}\n{fake}\n{foreign['AWS access key']}\n")
    assert ran.exit_code == 0, ran.output
    assert "Revoked 1 key(s); 0 already revoked; 1 not Purser's." in ran.output and "AWS Access Key" in ran.output
    # the same key pasted again: already revoked, nothing more is done
    slack.event(message(GENERAL, t.dev, keys["paste-bot"], "1700000100.000700"))
    d.settle()
    d.app.gateway.flush_refusals()  # the refusals of the leaked keys are counted in the store too: searched with it
    return ran.output


def replace_and_reveal(d: Deployment, slack_api, t: Team) -> None:
    """The owner takes the leak notice's "Issue a replacement", and reveals the new key."""
    [notice] = [m for m in slack_api.channel_messages(dm(t.dev)) if "key_replace" in buttons(m) and "paste-bot" in m.text]
    d.slack.click(t.dev, "key_replace", buttons(notice)["key_replace"], channel=dm(t.dev), message_ts=notice.ts)
    d.settle()
    [ready] = [m for m in slack_api.channel_messages(dm(t.dev)) if m.text.startswith("Your key paste-bot ") and "key_reveal" in buttons(m)]
    reveal(d, slack_api, t, t.dev, ready)


def test_every_way_a_secret_reaches_the_leak_guard_leaves_it_nowhere(deployed, db, slack_api, openrouter, caplog):
    d = deployed
    t = team(db, TAG, "development")
    fake, foreign = no_key(), foreign_tokens()
    keys = issue_and_reveal(d, slack_api, t)
    cli_output = leak_everywhere(d, t, keys, fake, foreign)
    replace_and_reveal(d, slack_api, t)

    # It all happened: five keys revoked for their leaks, each once; everyone told; the replacement works.
    with db.session() as s:
        status = {k.name: k.status for k in s.scalars(select(ApiKey).where(ApiKey.workspace_id == t.workspace)) if k.status is KeyStatus.REVOKED}
        reported = sorted(e.details["reported_by"] for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "key.leaked")))
    assert set(status) == set(NAMES) and reported == ["api", "cli", "slack", "slack", "slack"]
    assert len([m for m in slack_api.channel_messages(GENERAL) if m.thread_ts]) == 2  # the paste and the edit
    assert [m for m in slack_api.channel_messages(dm(t.dev)) if m.thread_ts == "1700000100.000500"]
    [warning] = [e for e in slack_api.ephemeral if e.user == t.dev and "credential" in e.text]
    assert "GitHub Token" in warning.text and "AWS Access Key" in warning.text
    assert [m for m in slack_api.channel_messages(AUDIT) if "credential" in m.text]
    shown = reveal_modals(slack_api)
    assert len(shown) == len(NAMES) + 1 and set(keys.values()) < set(shown) and sorted(shown) == sorted(t.clicked)
    assert not refused(d, shown[-1])

    needles = {f"key {i + 1}": s for i, s in enumerate(shown)} | {"no key": fake} | foreign | d.config.needles(d.db_password_in_use)
    for call in filter(is_reveal_call, slack_api.calls):  # a reveal modal shows its own key's secret, nothing else
        body = json.dumps(call.args, default=str)
        assert len([name for name, secret in needles.items() if secret in body]) == 1

    n_records, logs = log_text(caplog)
    n_calls, sent = slack_text(slack_api)
    n_rows, rows = database_text(db)
    haystacks = {"logs": logs, "Slack": sent, "app answers": "\n".join(d.slack.answers), "CLI output": cli_output, "database": rows}
    found = hits(haystacks, needles)
    # What was pasted and what is no key: not even a piece long enough to matter, anywhere.
    pasted = {"no key": fake, **foreign, **{f"leaked {name}": keys[name] for name in NAMES}}
    pieces = {f"{name} [{i}:{i + RUN}]": secret[i : i + RUN] for name, secret in pasted.items() for i in range(len(secret) - RUN + 1)}
    found_pieces = hits(haystacks, pieces)
    print(
        f"\nsecret hygiene {db.dialect} (leak guard): {len(needles)} secrets and {len(pieces)} {RUN}-character pieces searched in "
        f"{n_records} log records ({len(logs):,} chars), {n_calls} Slack calls, {len(d.slack.answers)} app answers, {n_rows} database rows; "
        f"hits {len(found)}, pieces {len(found_pieces)}"
    )
    assert found == [] and found_pieces == []
    assert n_records > 100 and n_calls > 20 and n_rows > 30  # the search looked at a real run
