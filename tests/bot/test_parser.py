"""The command parser answers every string with words and options, or a usage message — never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands import audit, budget, credits, invite, key, team, usage, workspace
from bot.parser import UsageError, normalise, parse, split
from bot.context import Asker
from bot.replies import Reply, guarded
from tests.slack_texts import REASONS, WORDS, quoted

OPTIONS = {"-w": "workspace", "--workspace": "workspace", "--limit": "limit", "--reason": "reason"}


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_parse_answers_every_string(text):
    try:
        parsed = parse(text, options=OPTIONS, flags={"--all": "all"})
    except UsageError as exc:
        assert str(exc)
        return
    assert all(isinstance(w, str) for w in parsed.words)
    assert set(parsed.options) <= set(OPTIONS.values())


@given(st.lists(st.sampled_from(["new", "list", "rotate", "--limit", "$5", '"a b', "<@U123|x>", "-w", "prod", "--all", "=", "--reason=x", "’", "\\"]), max_size=8))
@settings(max_examples=300, deadline=None)
def test_parse_answers_command_like_strings(words):
    text = " ".join(words)
    try:
        parse(text, options=OPTIONS, flags={"--all": "all"})
    except UsageError as exc:
        assert str(exc)


class NoStore:
    """Handlers that get as far as the store find nobody home: they must still answer in words."""

    def run(self, op, *args, **kwargs):
        from store.errors import InvalidInput

        raise InvalidInput("You are not a member of any Purser workspace yet.")


HANDLERS = [("/ai-key", key.handle), ("/ai-invite", invite.handle), ("/ai-team", team.handle), ("/ai-budget", budget.handle), ("/ai-credits", credits.handle), ("/ai-usage", usage.handle), ("/ai-audit", audit.handle), ("/ai-workspace", workspace.handle)]


@given(st.sampled_from(HANDLERS), st.text(max_size=200))
@settings(max_examples=400, deadline=None)
def test_every_command_answers_every_text_with_words(handler, text):
    name, handle = handler
    reply = guarded(name, handle, NoStore(), Asker("local", "U0SOMEONE1", "C0GENERAL"), text)
    assert isinstance(reply, Reply)
    assert reply.text and "error id" not in reply.text and "Traceback" not in reply.text


def test_slack_escapes_become_plain_ids():
    assert normalise("<@U0123ABC|ada>") == "U0123ABC"
    assert normalise("<#C0123ABC|alerts>") == "C0123ABC"
    assert normalise("<mailto:ada@example.com|ada@example.com>") == "ada@example.com"
    assert split('request search $300 --reason “launch week”') == ["request", "search", "$300", "--reason", "launch week"]


# -- real formats: tests/slack_texts.py ---------------------------------------------------------


@pytest.mark.parametrize("word", WORDS, ids=lambda w: w.sent)
def test_every_word_as_slack_sends_it_reads_as_typed(word):
    assert split(word.sent) == [word.read]


@pytest.mark.parametrize("reason", REASONS, ids=lambda w: w.sent)
@pytest.mark.parametrize("curly", [False, True])
def test_free_text_as_slack_sends_it_reads_as_typed(reason, curly):
    assert parse(f"new bot --reason {quoted(reason.sent, curly)}", options=OPTIONS).options["reason"] == reason.read


@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6), st.sampled_from(REASONS))
@settings(max_examples=200, deadline=None)
def test_commands_of_real_words_read_word_for_word(words, reason):
    """Any sequence of real-format words, with a free-text option among them, reads as typed."""
    text = " ".join(w.sent for w in words) + f" --reason {quoted(reason.sent)}"
    parsed = parse(text, options=OPTIONS)
    assert parsed.words == [w.read for w in words]
    assert parsed.options["reason"] == reason.read


def test_entities_are_decoded_once():
    assert split("&amp;lt;b&amp;gt;") == ["&lt;b&gt;"]


def test_a_lease_is_read_in_minutes_hours_days_or_weeks_and_refused_in_plain_words():
    from bot.commands.common import lease_minutes

    assert [lease_minutes(t) for t in ("90m", "8h", "3d", "2w", "30", "12 hours", None)] == [90, 480, 4320, 20160, 43200, 720, None]
    with pytest.raises(UsageError, match="“soon” is not a length of time. Write it like 90m, 8h, 3d or 2w."):
        lease_minutes("soon")
    with pytest.raises(UsageError, match="at least 1 hour; 45m is shorter"):
        lease_minutes("45m")
    with pytest.raises(UsageError, match="at most 3650 days .* 522w is longer"):
        lease_minutes("522w")
