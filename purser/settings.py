"""One typed settings object, from the environment. Secrets never show in its repr."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field("sqlite:///var/purser.db", alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    purser_secret_key: SecretStr | None = Field(None, alias="PURSER_SECRET_KEY")

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    # The Slack team this install serves; requests from any other team are refused.
    slack_team_id: str = Field("local", alias="SLACK_TEAM_ID")

    openrouter_management_key: SecretStr | None = Field(None, alias="OPENROUTER_MANAGEMENT_KEY")
    openrouter_api_url: str = Field("https://openrouter.ai/api/v1", alias="OPENROUTER_API_URL")

    port: int = Field(3000, alias="PORT")

    # Gateways: the proxies whose X-Forwarded-For / X-Real-IP are believed, and the
    # bearer tokens that may report usage (comma-separated, so one can be rotated out).
    trusted_proxies: str = Field("127.0.0.1/32,::1/128", alias="PURSER_TRUSTED_PROXIES")
    ingest_token: SecretStr | None = Field(None, alias="PURSER_INGEST_TOKEN")

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
