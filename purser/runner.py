"""`make run`: Purser in one process — the bot, workers and the clock — with embedded defaults.

SQLite under ./var, an in-process broker, the local key provider and, without Slack
credentials, the sandbox: a page on localhost that plays Slack. With SLACK_BOT_TOKEN
and SLACK_SIGNING_SECRET (and optionally SLACK_APP_TOKEN) it serves real Slack; with
DATABASE_URL / REDIS_URL it uses them.
"""

from __future__ import annotations

import logging
import secrets
import signal
import stat
import threading
from pathlib import Path

import typer

from purser import wiring
from purser.logs import setup_logging
from purser.settings import Settings
from purser.web_server import switch_threads_promptly

log = logging.getLogger("purser")


def ensure_secret_key(settings: Settings) -> str:
    """Use PURSER_SECRET_KEY, or keep a generated one in var/secret.key for the embedded setup."""
    from store.secrets import Cipher

    if settings.purser_secret_key:
        return "PURSER_SECRET_KEY"
    path = Path(settings.purser_secret_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Cipher.generate() + "\n")
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return str(path)


def main() -> None:
    from sqlalchemy.engine import make_url
    from waitress import create_server

    from bot.slack_client import Slack
    from store.migrate import upgrade
    from workers.broker import start_embedded_worker
    from workers.runtime import configure

    settings = wiring.settings()
    setup_logging(settings.log_level)
    url = settings.database_url
    upgrade(url)
    key_source = ensure_secret_key(settings)
    wiring.configure_store(settings)
    broker = wiring.broker(settings)
    worker = start_embedded_worker(broker)
    db = wiring.database(settings, publish=False)  # its gateway publishes (wiring.add_gateway)

    port = settings.port
    sandboxed = not (settings.slack_bot_token and settings.slack_signing_secret)
    if sandboxed:
        from sandbox.app import Sandbox
        from sandbox.demo import seed
        from sandbox.slack_api import SlackAPI

        token, signing = "xoxb-sandbox", secrets.token_hex(16)
        api_url = f"http://127.0.0.1:{port}/api/"
        bolt = wiring.bolt(db, settings, token=token, api_url=api_url, queued_commands=True)
        web = wiring.web(db, settings, bolt, signing)
        app = Sandbox(db, SlackAPI(token=token), web, signing, settings.slack_team_id)
        app.bot_url = f"http://127.0.0.1:{port}/slack/events"
        app.api_url = api_url
        configure(wiring.runtime(settings, db, slack_client=Slack(db, token, api_url)))
        seeded = seed(db, settings.slack_team_id)
        host = "127.0.0.1"  # the sandbox has no login: never listen beyond this machine
    else:
        bolt = wiring.bolt(db, settings, token=settings.slack_bot_token.get_secret_value(), api_url=settings.slack_api_url, queued_commands=True)
        app = wiring.web(db, settings, bolt, settings.slack_signing_secret.get_secret_value())
        configure(wiring.runtime(settings, db))
        host, seeded = "0.0.0.0", False

    clock = wiring.clock(settings)
    clock.start()
    # Waitress drops X-Forwarded-For and friends unless told whom to trust; Purser decides that
    # itself (PURSER_TRUSTED_PROXIES, gateway.clientip), as it does under gunicorn, so it must see them.
    server = create_server(app, host=host, port=port, threads=16, ident="purser", clear_untrusted_proxy_headers=False)
    switch_threads_promptly()  # as in each gunicorn worker: a request does not wait out a busy thread's 5 ms

    typer.echo(f"Purser is running — store {make_url(db.url).render_as_string(hide_password=True)}, broker {'Redis' if settings.redis_url else 'in-process'}, key provider local")
    typer.echo(f"Key secrets are encrypted with the key from {key_source}")
    if sandboxed:
        typer.echo(f"No Slack credentials: the sandbox plays Slack at  http://127.0.0.1:{port}/" + ("  (demo team seeded)" if seeded else ""))
    elif settings.slack_app_token:
        typer.echo("Slack: Socket Mode")
    else:
        typer.echo(f"Slack: point the app's request URLs at this host's port {port}, path /slack/events")
    typer.echo("Ctrl-C stops it; the data stays in the store for the next run.")

    stopping = threading.Event()

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    socket_thread = None
    if not sandboxed and settings.slack_app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_thread = SocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
        socket_thread.connect()
    try:
        server.run()
    except (KeyboardInterrupt, OSError):
        pass
    finally:
        clock.stop()
        worker.stop(timeout=5000)
        if socket_thread is not None:
            socket_thread.close()
        db.dispose()
        typer.echo("Purser stopped.")
