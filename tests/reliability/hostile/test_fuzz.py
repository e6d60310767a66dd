"""Fuzzed commands, buttons and modal submissions over signed HTTP: every one answered, none with an error's words or markup Purser did not mean."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import COMMANDS
from tests.reliability.hostile.checks import (
    RAW,
    assert_inert,
    assert_no_leak,
    errors_in_reply,
    said_in_reply,
    said_to_slack,
    settle,
)
from tests.reliability.hostile.world import (
    ACTIONS,
    FAST,
    FORMS,
    HOSTILE,
    MARKS,
    SLOW,
    World,
    chars,
    block_actions,
    command_text,
    form,
    hypothesis_settings,
    json_value,
    view_submission,
)

# Hypothesis warns when the global `random` changes while it draws an example; here that is
# dramatiq's Redis consumer threads (a maintenance roll on each fetch), never the strategies.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")


# -- fuzz: commands -----------------------------------------------------------------------


def fuzz_commands(db, slack, slack_api, workers, w: World, examples: int) -> None:
    @hypothesis_settings(examples)
    # Slack always names the channel a command was typed in (a DM's id starts with D).
    @given(command=st.sampled_from(sorted(COMMANDS)), user=st.sampled_from(w.users), text=command_text, channel=st.sampled_from(["C0GENERAL", "C0ALPHAAPPR", "C0ZULUAPPR", "D0DIRECT"]))
    def prop(command, user, text, channel):
        since = len(slack_api.calls)
        answer = slack.command(user, command, text, channel=channel)
        assert answer.status_code == 200, (command, text, answer.status_code, answer.text[:300])
        # Never silence: a reply (in the ack or through the response_url), or the form it opened.
        opened = any(call.method == "views.open" for call in slack_api.calls[since:])
        assert opened or any(t.strip() for t in said_in_reply(answer)), (command, text, "neither a reply nor a form")
        texts = said_in_reply(answer) + said_to_slack(slack_api, since)
        assert_no_leak(texts)
        assert_inert(texts, RAW[:-1] + ("`TICK`",), MARKS)

    prop()
    settle(workers)
    everything = said_to_slack(slack_api)
    assert_no_leak(everything)
    assert_inert(everything, RAW[:-1] + ("`TICK`",), MARKS)


def test_fuzzed_command_text_is_answered_without_error_or_markup(db, world, slack, slack_api, workers):
    fuzz_commands(db, slack, slack_api, workers, world, FAST)


@pytest.mark.slow
def test_fuzzed_command_text_at_length(db, world, slack, slack_api, workers):
    fuzz_commands(db, slack, slack_api, workers, world, SLOW)


# -- fuzz: buttons ------------------------------------------------------------------------


def fuzz_clicks(db, slack, slack_api, workers, w: World, examples: int) -> None:
    value = st.one_of(st.sampled_from(w.ids), st.integers(min_value=-(2**70), max_value=2**70).map(str), st.text(chars, max_size=40), json_value)

    @hypothesis_settings(examples)
    @given(action=st.one_of(st.sampled_from(ACTIONS), st.text(chars, max_size=20)), user=st.sampled_from(w.users), value=value, where=st.sampled_from(["channel", "home", "nowhere"]))
    def prop(action, user, value, where):
        since = len(slack_api.calls)
        answer = slack.interaction(block_actions(user, action, value, where=where))
        assert answer.status_code in ((200,) if action in ACTIONS else (200, 404)), (action, value, answer.status_code, answer.text[:300])
        texts = said_in_reply(answer) + said_to_slack(slack_api, since)
        assert_no_leak(texts)
        assert_inert(texts, RAW[:-1])

    prop()
    settle(workers)
    assert_no_leak(said_to_slack(slack_api))


def test_fuzzed_button_clicks_are_answered_without_error(db, world, slack, slack_api, workers):
    fuzz_clicks(db, slack, slack_api, workers, world, FAST)


@pytest.mark.slow
def test_fuzzed_button_clicks_at_length(db, world, slack, slack_api, workers):
    fuzz_clicks(db, slack, slack_api, workers, world, SLOW)


# -- fuzz: modal submissions --------------------------------------------------------------


def fuzz_submissions(db, slack, slack_api, workers, w: World, examples: int) -> None:
    ws_ids = st.sampled_from([w.alpha, w.zulu, 0, -1, 2**63, "1", None])
    metadata = st.one_of(
        st.text(chars, max_size=60),
        json_value.map(json.dumps),
        st.builds(lambda ws, ch: json.dumps({"workspace_id": ws, "channel_id": ch}), ws_ids, st.one_of(st.none(), st.sampled_from(["C0GENERAL", ""]), st.text(chars, max_size=12))),
        st.builds(lambda r: json.dumps({"request_id": r}), st.one_of(st.sampled_from([w.a_request, w.z_request]), json_value)),
    )
    field = st.one_of(st.sampled_from(HOSTILE), st.text(chars, max_size=80), st.text(chars, min_size=490, max_size=600))
    values = st.one_of(
        st.fixed_dictionaries({}, optional={b: field for b in ("name", "project", "limit", "expires", "reason")}).map(lambda d: form(**d)),
        st.dictionaries(st.sampled_from(["name", "project", "limit", "expires", "reason"]), json_value, max_size=5),
        json_value,
    )

    @hypothesis_settings(examples)
    @given(callback=st.one_of(st.sampled_from(FORMS), st.text(chars, max_size=12)), user=st.sampled_from(w.users), meta=metadata, values=values)
    def prop(callback, user, meta, values):
        since = len(slack_api.calls)
        answer = slack.interaction(view_submission(user, callback, meta, values))
        assert answer.status_code in ((200,) if callback in FORMS else (200, 404)), (callback, meta, values, answer.status_code, answer.text[:300])
        if answer.content and callback in FORMS:
            assert answer.json().get("response_action") == "errors", answer.text[:300]
        texts = said_in_reply(answer) + errors_in_reply(answer) + said_to_slack(slack_api, since)
        assert_no_leak(texts)
        assert_inert(said_to_slack(slack_api, since), RAW[:-1] + ("`TICK`",), MARKS)

    prop()
    settle(workers)
    everything = said_to_slack(slack_api)
    assert_no_leak(everything)
    assert_inert(everything, RAW[:-1] + ("`TICK`",), MARKS)


def test_fuzzed_modal_submissions_are_answered_without_error(db, world, slack, slack_api, workers):
    fuzz_submissions(db, slack, slack_api, workers, world, FAST)


@pytest.mark.slow
def test_fuzzed_modal_submissions_at_length(db, world, slack, slack_api, workers):
    fuzz_submissions(db, slack, slack_api, workers, world, SLOW)
