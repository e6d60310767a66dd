"""Socket Mode: the same Bolt app over Slack's websocket, when SLACK_APP_TOKEN is set (no public URL needed)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def main() -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app
    from purser.logs import setup_logging
    from purser.settings import get_settings
    from store.db import Database
    from workers import actors
    from workers.commands import hand_off

    setup_logging()
    settings = get_settings()
    if not settings.slack_bot_token or not settings.slack_app_token:
        raise SystemExit("Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN.")
    db = Database(settings.database_url)
    db.on_new_actions(actors.enqueue)
    app = build_app(db, token=settings.slack_bot_token.get_secret_value(), team_id=settings.slack_team_id, api_url=settings.slack_api_url, handoff=hand_off if settings.redis_url else None)
    log.info("connecting to Slack in Socket Mode")
    SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()
