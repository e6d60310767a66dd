"""One typed settings object, from the environment. Secrets never show in its repr."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field("sqlite:///var/purser.db", alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    purser_secret_key: SecretStr | None = Field(None, alias="PURSER_SECRET_KEY")
    # Without PURSER_SECRET_KEY, the key `purser run` generated and keeps here.
    purser_secret_key_file: str = Field("var/secret.key", alias="PURSER_SECRET_KEY_FILE")

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    # The Slack team this install serves; requests from any other team are refused.
    slack_team_id: str = Field("local", alias="SLACK_TEAM_ID")

    openrouter_management_key: SecretStr | None = Field(None, alias="OPENROUTER_MANAGEMENT_KEY")
    openrouter_api_url: str = Field("https://openrouter.ai/api/v1", alias="OPENROUTER_API_URL")

    @field_validator("openrouter_management_key", mode="after")
    @classmethod
    def _strip_management_key(cls, value: SecretStr | None) -> SecretStr | None:
        # A key pasted with its trailing newline is still the key. What else it may not hold is
        # refused at start-up (purser.wiring.check_openrouter_key): a validation error here
        # would print the value it refused.
        key = value.get_secret_value().strip() if value is not None else ""
        return SecretStr(key) if key else None

    @field_validator("openrouter_api_url", mode="after")
    @classmethod
    def _strip_api_url(cls, value: str) -> str:
        return value.strip()

    port: int = Field(3000, alias="PORT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # Who `purser …` on the command line acts as in the audit log (cli:<user>).
    operator: str = Field("operator", alias="USER")

    # A JSON file of per-model token prices, over the built-in table (store/pricing.py).
    model_prices_file: str | None = Field(None, alias="PURSER_MODEL_PRICES")
    # How long a claimed action is one worker's alone before another may take it over.
    action_lease_seconds: float = Field(60, gt=0, alias="PURSER_ACTION_LEASE_SECONDS")
    # Seconds between the clock's jobs (PURSER_CLOCK_<JOB>); unset, workers/clock.py's defaults.
    clock_sweep_outbox: float | None = Field(None, gt=0, alias="PURSER_CLOCK_SWEEP_OUTBOX")
    clock_sync_usage: float | None = Field(None, gt=0, alias="PURSER_CLOCK_SYNC_USAGE")
    clock_poll_leases: float | None = Field(None, gt=0, alias="PURSER_CLOCK_POLL_LEASES")
    clock_sync_directory: float | None = Field(None, gt=0, alias="PURSER_CLOCK_SYNC_DIRECTORY")
    clock_evaluate_thresholds: float | None = Field(None, gt=0, alias="PURSER_CLOCK_EVALUATE_THRESHOLDS")
    clock_roll_over_periods: float | None = Field(None, gt=0, alias="PURSER_CLOCK_ROLL_OVER_PERIODS")
    clock_end_raises: float | None = Field(None, gt=0, alias="PURSER_CLOCK_END_RAISES")
    clock_expire_requests: float | None = Field(None, gt=0, alias="PURSER_CLOCK_EXPIRE_REQUESTS")
    clock_wipe_reveals: float | None = Field(None, gt=0, alias="PURSER_CLOCK_WIPE_REVEALS")
    clock_announce_leases: float | None = Field(None, gt=0, alias="PURSER_CLOCK_ANNOUNCE_LEASES")
    clock_lock_ttl: float | None = Field(None, gt=0, alias="PURSER_CLOCK_LOCK_TTL")
    # Not seconds: the minute past each hour the spike check runs (the hour just ended is complete by then).
    clock_check_spikes_minute: int | None = Field(None, ge=0, le=59, alias="PURSER_CLOCK_CHECK_SPIKES_MINUTE")

    # Spike alerts (store/spikes.py): spend above this multiple of its usual for the hour of the
    # week, the usual being the median of that hour over this many weeks before, and the floors
    # under the usual (an amount: "$1", "0.5") so a key that usually spends nothing is not
    # announced for cents.
    spike_multiple: float = Field(3, gt=1, alias="PURSER_SPIKE_MULTIPLE")
    spike_weeks: int = Field(4, ge=1, le=12, alias="PURSER_SPIKE_WEEKS")
    spike_hour_floor: int = Field(1_000_000, alias="PURSER_SPIKE_HOUR_FLOOR")
    spike_day_floor: int = Field(5_000_000, alias="PURSER_SPIKE_DAY_FLOOR")

    @field_validator("spike_hour_floor", "spike_day_floor", mode="before")
    @classmethod
    def _money(cls, value: object) -> object:
        if isinstance(value, str):  # as people type amounts; micro-dollars from here on
            from store.errors import DomainError
            from store.money import parse_money

            try:
                return parse_money(value)
            except DomainError as exc:
                raise ValueError(exc.message) from None
        return value

    # Gateways: the proxies whose X-Forwarded-For / X-Real-IP are believed, and the
    # bearer tokens that may report usage (comma-separated, so one can be rotated out).
    trusted_proxies: str = Field("127.0.0.1/32,::1/128", alias="PURSER_TRUSTED_PROXIES")
    ingest_token: SecretStr | None = Field(None, alias="PURSER_INGEST_TOKEN")

    def clock_intervals(self) -> dict[str, float]:
        """The clock intervals set, by job name."""
        return {name.removeprefix("clock_"): value for name, value in self if name.startswith("clock_") and value is not None}

    def __repr_args__(self):
        # Connection URLs may carry a password; show it masked like the SecretStr fields.
        for name, value in super().__repr_args__():
            yield name, mask_password(value) if name in ("database_url", "redis_url") and isinstance(value, str) else value


def mask_password(url: str) -> str:
    """``scheme://user:***@host/…``: where a URL points, without its password."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a process it starts (gunicorn, dramatiq), with ``extra`` on top."""
    return {**os.environ, **extra}
