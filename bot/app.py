"""The Bolt app: every command, button, modal and event wired to its thin handler."""

from __future__ import annotations

import logging
import re
from typing import Callable

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot import directory_events, interactions, leak_guard, texts
from bot.blocks.invitations import ACCEPT, DECLINE
from bot.blocks.keys import REVEAL
from bot.blocks.directory import RESTORE
from bot.blocks.leaks import REPLACE
from bot.blocks.reviews import KEEP, REVOKE, TRANSFER, TRANSFER_FORM
from bot.blocks.leases import EXTEND
from bot.blocks.spikes import MUTES
from bot.blocks.requests import APPROVE, DENY
from bot.parser import UsageError
from bot.commands.registry import COMMANDS, answered_at_once
from bot.context import Asker
from bot.home import home_view
from bot.replies import Reply, guarded, unexpected
from bot.views.deny import DENY_FORM
from bot.views.key_form import KEY_FORM
from store import slack_access
from store.db import Database
from store.errors import DomainError

log = logging.getLogger(__name__)
# slack_sdk logs each request and response body at DEBUG, and the reveal modal's body is a
# key's secret: the Web API client's records below INFO are dropped whatever the log level.
api_log = logging.getLogger("purser.slack_api")
api_log.addFilter(lambda record: record.levelno >= logging.INFO)

#: hands a command to the workers (``workers.commands.hand_off``); False means answer it in the ack
Handoff = Callable[[str, Asker, str, "str | None"], bool]


def web_client(token: str, base_url: str) -> WebClient:
    return WebClient(token=token, base_url=base_url if base_url.endswith("/") else base_url + "/", timeout=5, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)], logger=api_log)


def build_app(db: Database, *, token: str, team_id: str, api_url: str, signing_secret: str | None = None, handoff: Handoff | None = None) -> App:
    """Signature checks happen in front of Bolt (bot/web.py) over HTTP; Socket Mode needs none.

    With ``handoff``, commands that touch the store are acked at once and answered by a
    worker through their response_url; without it (no queue shared with workers) in the ack.
    """
    def authorize(enterprise_id, team_id):
        # One team, one bot token: nothing to look up, so a Slack API outage cannot fail a request here.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    app = App(
        client=web_client(token, api_url),
        signing_secret=signing_secret or "unused",
        authorize=authorize,
        request_verification_enabled=False,
        token_verification_enabled=False,
        ignoring_self_events_enabled=False,
        raise_error_for_unhandled_request=False,
    )

    @app.middleware
    def only_our_team(body: dict, next: Callable) -> BoltResponse | None:
        # Fail closed: a request naming no team is not known to be ours either.
        team = interactions.asker_of(body).team_id
        if team != team_id:
            log.warning("refused a request from team %r (this install serves %s)", str(team)[:20], team_id)
            return BoltResponse(status=403, body="This Purser serves another Slack team.")
        return next()

    @app.middleware
    def once_per_event(req: BoltRequest, next: Callable) -> BoltResponse | None:
        # Slack retries an event it got no 200 for within 3 s. After a timeout the first delivery
        # did reach Purser and was handled (late): doing it again would answer twice. Other retries
        # (an error, no connection) mean it was not handled, so they are.
        if _retried_after_timeout(req.headers):
            return BoltResponse(status=200, body="")
        return next()

    for name, handler in COMMANDS.items():
        app.command(name)(_command(db, name, handler, handoff))

    def action(handler):
        def listener(ack, body, client):
            # The decision commits before Slack hears back: a store operation takes milliseconds,
            # and the clicker's next look (or click) then sees the outcome.
            try:
                handler(db, client, body)
                if db.deferred():
                    interactions.tell(client, body, texts.QUEUED)
            except (DomainError, UsageError) as exc:  # refused: the clicker hears why, and who decided first
                interactions.tell(client, body, interactions.refusal(exc))
            except Exception:
                interactions.tell(client, body, unexpected())
            finally:
                ack()
            if (body.get("view") or {}).get("type") == "home":  # clicked in App Home: show the new state
                refresh_home(db, client, interactions.asker_of(body))

        return listener

    app.action(APPROVE)(action(interactions.approve))
    app.action(DENY)(action(interactions.deny))
    app.action(REVEAL)(action(interactions.reveal))
    app.action(ACCEPT)(action(interactions.accept))
    app.action(DECLINE)(action(interactions.decline))
    app.action(REPLACE)(action(interactions.replace))
    app.action(RESTORE)(action(interactions.restore))
    app.action(EXTEND)(action(interactions.extend))
    for mute in MUTES:
        app.action(mute)(action(interactions.mute_spikes))
    app.action(KEEP)(action(interactions.review_keep))
    app.action(REVOKE)(action(interactions.review_revoke))
    app.action(TRANSFER)(action(interactions.review_transfer))

    @app.view(DENY_FORM)
    def deny_submitted(ack, body):
        ack(**on_the_form("reason", lambda: interactions.deny_submitted(db, body)))

    @app.view(TRANSFER_FORM)
    def review_transfer_submitted(ack, body):
        ack(**on_the_form("to", lambda: interactions.review_transfer_submitted(db, body)))

    @app.view(KEY_FORM)
    def key_form_submitted(ack, body, client):
        ack(**on_the_form("name", lambda: interactions.key_form_submitted(db, client, body)))

    @app.event("message")
    def message_seen(ack, event, body):
        # Acked first (Bolt runs the rest after Slack has its 200): a leak is looked for
        # in every message Purser can see, and a Purser key in it is revoked at once.
        ack()
        leak_guard.inspect(db, body.get("team_id"), event)

    @app.event("user_change")
    def user_changed(ack, event, body):
        ack()
        directory_events.user_changed(db, body.get("team_id"), event.get("user") or {})

    @app.event("team_join")
    def team_joined(ack, event, body):
        ack()
        directory_events.team_joined(db, body.get("team_id"), event.get("user") or {})

    @app.event("tokens_revoked")
    @app.event("app_uninstalled")
    def access_lost(ack, event, body):
        # Every process stops calling Slack (bot/slack_client.py); /healthz says why until a reinstall.
        ack()
        why = event.get("type", "tokens_revoked")
        if db.run(slack_access.revoked, body.get("team_id") or team_id, why):
            log.error("Slack revoked Purser's access (%s): nothing more is sent to Slack until Purser is reinstalled and SLACK_BOT_TOKEN is set anew", why)

    @app.event("app_home_opened")
    def home_opened(event, body, client):
        refresh_home(db, client, Asker(body.get("team_id", ""), event["user"]))

    # Events Purser is subscribed to but has nothing to do with still get their 200: an
    # unhandled one would be answered 404, and Slack retries those, then disables the subscription.
    app.event(re.compile(".*"))(lambda ack: ack())

    @app.error
    def on_error(error):
        log.exception("unhandled error in a Slack listener", exc_info=error)

    return app


def _retried_after_timeout(headers: dict[str, list[str]]) -> bool:
    # Bolt hands the headers over lower-cased, each a list of values.
    return bool(headers.get("x-slack-retry-num")) and (headers.get("x-slack-retry-reason") or [""])[0] == "http_timeout"


def on_the_form(field: str, submit: Callable[[], dict | None]) -> dict:
    """A submission's answer; an unexpected failure is shown on the form, not as Slack's "trouble connecting"."""
    try:
        return submit() or {}
    except Exception:
        return {"response_action": "errors", "errors": {field: unexpected().replace("`", "")[:150]}}


def refresh_home(db: Database, client: WebClient, asker: Asker) -> None:
    try:
        client.views_publish(user_id=asker.user_id, view=home_view(db, asker))
    except SlackApiError as exc:
        log.warning("could not publish App Home: %s", exc.response.get("error"))


def _command(db: Database, name: str, handler: Callable[..., Reply], handoff: Handoff | None):
    def listener(ack, body, client):
        asker = Asker(body.get("team_id", ""), body.get("user_id", ""), body.get("channel_id"))
        text = body.get("text") or ""
        if handoff is not None and not answered_at_once(name, text) and handoff(name, asker, text, body.get("response_url")):
            ack()  # the answer follows through response_url, as Slack advises for anything slow
            return
        reply = guarded(name, handler, db, asker, text)
        if db.deferred():  # committed, but the queue is away: say so rather than leave them wondering
            reply.text = f"{reply.text}\n{texts.QUEUED}".strip()
        if reply.modal is None:
            ack(**reply.ack_kwargs())
            return
        try:
            client.views_open(trigger_id=body.get("trigger_id"), view=reply.modal)
            ack()
        except SlackApiError as exc:
            log.warning("could not open a modal: %s", exc.response.get("error"))
            ack(text=f"Could not open the form; type it instead, like `{name} new search-bot --limit $50`.", response_type="ephemeral")

    return listener
