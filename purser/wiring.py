"""The composition root: the one place that turns the settings into Purser's parts and hands them over.

Every process builds what it needs here, once: `purser web` (gunicorn runs
``create_app()``), Socket Mode, `purser worker` (``purser.worker_process``), `purser
clock`, `purser run` (``purser.runner``), the CLI's commands and the tests. Nothing
else reads the settings or the environment; each part gets what it needs passed in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from purser.logs import setup_logging
from purser.settings import Settings, get_settings
from store import outbox, pricing, secrets
from store.db import Database
from store.errors import InvalidInput
from store.spikes import SpikeRule

if TYPE_CHECKING:
    import dramatiq
    from slack_bolt import App

    from bot.slack_client import Slack
    from bot.web import WebApp
    from workers.clock import Clock
    from workers.inline import Inline
    from workers.providers.base import KeyProvider
    from workers.runtime import Runtime

log = logging.getLogger("purser")

NO_SECRET_KEY = "PURSER_SECRET_KEY is not set. Generate one with `purser secret-key` and export it."


def settings() -> Settings:
    return get_settings()


def secret_key(settings: Settings) -> str:
    """PURSER_SECRET_KEY (environment or .env), else the key file `purser run` keeps."""
    if settings.purser_secret_key and settings.purser_secret_key.get_secret_value().strip():
        return settings.purser_secret_key.get_secret_value().strip()
    path = Path(settings.purser_secret_key_file)
    if path.exists():
        return path.read_text().strip()
    raise InvalidInput(NO_SECRET_KEY)


def configure_store(settings: Settings) -> None:
    """What the store takes from the settings: the secrets' key (read when first needed), prices, the action lease."""
    secrets.use_key_source(lambda: secret_key(settings))
    pricing.use_price_file(settings.model_prices_file)
    outbox.use_lease(settings.action_lease_seconds)


def database(settings: Settings, *, relay: bool = True, publish: bool = True) -> Database:
    """The store; its new actions queued (``relay``), its pauses and revocations published to every web process's key cache."""
    from gateway.invalidation import install_publisher

    db = Database(settings.database_url)
    if publish:
        install_publisher(db, settings.redis_url)
    if relay:
        from workers.actors import enqueue

        db.on_new_actions(enqueue)
    return db


def broker(settings: Settings) -> dramatiq.Broker:
    """Redis when REDIS_URL is set, else the in-process stub; every actor moved onto it."""
    from workers.broker import make_broker
    from workers.registry import use_broker

    return use_broker(make_broker(settings.redis_url))


def providers(settings: Settings) -> Callable[[str], KeyProvider]:
    from workers.providers import build_provider

    check_openrouter_key(settings)
    key = settings.openrouter_management_key.get_secret_value() if settings.openrouter_management_key else ""
    return lambda name: build_provider(name, openrouter_key=key, openrouter_url=settings.openrouter_api_url)


def check_openrouter_key(settings: Settings) -> None:
    """A management key that cannot be sent fails every OpenRouter call: say so at start, naming the setting, never the key.

    Unset is not refused: only workspaces on OpenRouter need it, and they are told when a key is made.
    """
    from workers.providers.base import PermanentProviderError
    from workers.providers.openrouter_http import clean_management_key

    if settings.openrouter_management_key is None:
        return
    try:
        clean_management_key(settings.openrouter_management_key.get_secret_value())
    except PermanentProviderError as exc:
        raise SystemExit(str(exc)) from None


def slack(db: Database, settings: Settings, *, token: str | None = None, api_url: str | None = None) -> Slack | None:
    """The Web API client the workers post with; None without a bot token."""
    from bot.slack_client import Slack

    token = token or (settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None)
    if not token:
        log.warning("SLACK_BOT_TOKEN is not set: workers will not post to Slack")
        return None
    return Slack(db, token, api_url or settings.slack_api_url)


def runtime(settings: Settings, db: Database, *, slack_client: Slack | None = None) -> Runtime:
    """What the workers' actors run with; without ``slack_client``, the one the settings give (if any)."""
    from bot.commands.registry import Answers
    from workers.catalog import model_catalog
    from workers.clock import Intervals
    from workers.runtime import Runtime

    client = slack_client or slack(db, settings)
    intervals = Intervals(**settings.clock_intervals())
    polls = (max(1, int(intervals.poll_leases)), max(1, int(intervals.sync_usage)))
    rt = Runtime(db=db, slack=client, make_provider=providers(settings), poll_intervals=polls, team_id=settings.slack_team_id, spike_rule=spike_rule(settings))
    rt.commands = Answers(db, catalog=model_catalog(rt))  # /ai-models reads the providers' catalogs through the runtime
    return rt


def spike_rule(settings: Settings) -> SpikeRule:
    return SpikeRule(settings.spike_multiple, settings.spike_weeks, settings.spike_hour_floor, settings.spike_day_floor)


def workers_runtime(settings: Settings) -> None:
    """A worker process's runtime, built on first use (after dramatiq forks its processes)."""
    from workers.runtime import configure_lazily

    check_openrouter_key(settings)  # now, as the process starts, not in its first action
    configure_lazily(lambda: runtime(settings, database(settings)))


def inline(db: Database, settings: Settings) -> Inline | None:
    """For a CLI command: its actions to the queue when there is one, else carried out before it exits."""
    from workers.inline import hand_over

    return hand_over(db, settings.redis_url, lambda on: runtime(settings, on))


def bolt(db: Database, settings: Settings, *, token: str, api_url: str, queued_commands: bool) -> App:
    from bot.app import build_app
    from workers.commands import hand_off

    return build_app(db, token=token, team_id=settings.slack_team_id, api_url=api_url, handoff=hand_off if queued_commands else None)


def web(db: Database, settings: Settings, bolt_app: App, signing_secret: str) -> WebApp:
    """The WSGI app: Slack's requests, /healthz, the gateways' /v1/authz and /v1/usage, and SCIM's /scim/v2."""
    from bot.web import WebApp, health_checks

    app = WebApp(db, bolt_app, signing_secret, health=health_checks(db, settings.redis_url))
    add_gateway(app, db, settings)
    add_scim(app, db, settings)
    return app


def add_scim(app: WebApp, db: Database, settings: Settings) -> None:
    """Serve /scim/v2, where identity providers (Okta, Entra ID) provision people (docs/scim.md)."""
    from gateway.scim import PREFIX, ScimApi

    app.mount(PREFIX, ScimApi(db, trusted_proxies=settings.trusted_proxies))


def add_gateway(app: WebApp, db: Database, settings: Settings) -> None:
    """Serve /v1/authz and /v1/usage from this process, its key cache kept fresh through Redis when there is one."""
    from gateway.http import Gateway
    from gateway.invalidation import Subscriber, install_publisher

    gateway = Gateway(db, trusted_proxies=settings.trusted_proxies, ingest_tokens=settings.ingest_token.get_secret_value() if settings.ingest_token else "")
    for (method, path), handler in gateway.routes().items():
        app.route(method, path, handler)
    install_publisher(db, settings.redis_url)
    # This process's own commits (a leak reported here, a revocation from Slack) reach its
    # cache at once, with or without Redis: a leaked key is refused from the next call on.
    db.on_authz_changes(gateway.cache.invalidate)
    if settings.redis_url:
        Subscriber(settings.redis_url, gateway.cache).start()
    app.gateway = gateway


def check_secret_key() -> None:
    """The Reveal button needs the key: say so at start, not to the first person who clicks."""
    try:
        secrets.cipher()
    except InvalidInput as exc:
        raise SystemExit(exc.message) from None


def _slack_process(conf: Settings, has: bool, refusal: str, *, publish: bool = True) -> Database:
    """What the web and Socket Mode processes do before serving Slack: refuse to start
    without what they need (Reveal needs the secret key), then the store and the broker."""
    setup_logging(conf.log_level)
    if not has:
        raise SystemExit(refusal)
    configure_store(conf)
    check_secret_key()
    broker(conf)
    db = database(conf, publish=publish)
    slack_access_back(db, conf)
    return db


def slack_access_back(db: Database, conf: Settings) -> bool:
    """After Slack revoked Purser's access: a reinstall's new token works again, so the access is back."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from store import slack_access

    with db.session() as s:
        gone = slack_access.lost(s)
    if gone is None or not conf.slack_bot_token:
        return False
    try:
        WebClient(token=conf.slack_bot_token.get_secret_value(), base_url=conf.slack_api_url, timeout=5).auth_test()
    except (SlackApiError, OSError) as exc:
        log.error("Slack still refuses Purser's token (%s): reinstall Purser in Slack and set the new SLACK_BOT_TOKEN", getattr(exc, "response", {}).get("error") if isinstance(exc, SlackApiError) else type(exc).__name__)
        return False
    db.run(slack_access.restored, gone.team_id)
    log.info("Slack accepts Purser's token again: sending to Slack resumes")
    return True


def _bolt_for(db: Database, conf: Settings) -> App:
    # Commands go to the workers only through a queue they share; alone, this process answers them itself.
    return bolt(db, conf, token=conf.slack_bot_token.get_secret_value(), api_url=conf.slack_api_url, queued_commands=bool(conf.redis_url))


def create_app() -> WebApp:
    """The `web` process, as gunicorn runs it: ``gunicorn 'purser.wiring:create_app()'``."""
    import atexit

    conf = settings()
    needs = "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set for the web process."
    db = _slack_process(conf, bool(conf.slack_signing_secret and conf.slack_bot_token), needs, publish=False)  # its gateway publishes (add_gateway)
    app = web(db, conf, _bolt_for(db, conf), conf.slack_signing_secret.get_secret_value())
    atexit.register(app.gateway.close)  # a worker that exits keeps its last seconds of refusal counts
    return app


def socket_mode() -> None:
    """The same Bolt app over Slack's websocket (SLACK_APP_TOKEN): no public URL needed."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    conf = settings()
    db = _slack_process(conf, bool(conf.slack_bot_token and conf.slack_app_token), "Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN.")
    app = _bolt_for(db, conf)
    log.info("connecting to Slack in Socket Mode")
    SocketModeHandler(app, conf.slack_app_token.get_secret_value()).start()


def clock(conf: Settings) -> Clock:
    from workers.clock import Clock, Intervals
    from workers.leader import make_lock

    intervals = Intervals(**conf.clock_intervals())
    return Clock(make_lock(conf.redis_url, conf.database_url, intervals.lock_ttl), intervals)


def run_clock() -> None:
    """The `clock` process, until SIGTERM / Ctrl-C."""
    import signal
    import threading

    conf = settings()
    setup_logging(conf.log_level)
    broker(conf)
    scheduler = clock(conf)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scheduler.start()
    log.info("%s started; jobs: %s", scheduler.name, ", ".join(j.id for j in scheduler.scheduler.get_jobs()))
    stop.wait()
    scheduler.stop()
