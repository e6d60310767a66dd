"""The operator's secrets: settings and providers never show one, and rotating PURSER_SECRET_KEY keeps every waiting reveal working."""

from __future__ import annotations

import secrets as random

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from purser import wiring
from purser.cli import app as cli
from purser.settings import Settings, get_settings
from store import keys
from store import secrets as store_secrets
from store.errors import InvalidInput
from store.models import KeyReveal
from store.secrets import Cipher, use_cipher
from store.types import Role
from tests import factories as f
from tests.fixtures_workers import BOT_TOKEN
from workers.providers.openrouter import OpenRouterProvider

from tests.reliability.secret_hygiene.search import Config, hits


# -- the operator's configuration ----------------------------------------------------


def test_settings_and_provider_never_show_a_secret_in_repr_or_str(monkeypatch):
    config = Config()
    env = {
        "DATABASE_URL": f"postgresql+psycopg://purser:{config.db_password}@db.internal:5432/purser",
        "REDIS_URL": f"redis://:{config.db_password}x@cache.internal:6379/0",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": config.signing_secret,
        "SLACK_APP_TOKEN": "xapp-" + random.token_hex(16),
        "PURSER_SECRET_KEY": config.fernet_key,
        "PURSER_INGEST_TOKEN": config.ingest_token,
        "OPENROUTER_MANAGEMENT_KEY": config.management_key,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.openrouter_management_key.get_secret_value() == config.management_key
    needles = config.needles(True) | {"SLACK_APP_TOKEN": env["SLACK_APP_TOKEN"], "REDIS_URL password": config.db_password + "x"}
    provider = OpenRouterProvider(config.management_key, "https://openrouter.example/api/v1")
    try:
        shown = {"repr(Settings)": repr(settings), "str(Settings)": str(settings), "repr(provider)": repr(provider), "str(provider)": str(provider), "vars(provider)": repr(vars(provider))}
    finally:
        provider.close()
    assert hits(shown, needles) == []
    assert "db.internal" in repr(settings) and "openrouter.example" in repr(provider)  # still says where


# -- rotating PURSER_SECRET_KEY ------------------------------------------------------


@pytest.fixture
def restore_cipher():
    saved = store_secrets._cipher
    yield
    use_cipher(saved)


@pytest.fixture
def operator(db, restore_cipher, monkeypatch):
    """`purser …` as the operator runs it: the store and PURSER_SECRET_KEY from the environment."""
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()

    def run(*args: str, secret_key: str):
        monkeypatch.setenv("PURSER_SECRET_KEY", secret_key)
        get_settings.cache_clear()
        use_cipher(None)  # a new process reads the key afresh
        return CliRunner().invoke(cli, list(args))

    yield run
    get_settings.cache_clear()


def waiting_keys(db, n: int):
    """``n`` keys waiting for their reveal, and their owner."""
    ws = f.workspace(db, "rot", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    return [f.key(db, ws, dev, f"bot-{i}") for i in range(n)], dev


def ciphertexts(db) -> dict[int, bytes]:
    with db.session() as s:
        return {r.key_id: r.ciphertext for r in s.scalars(select(KeyReveal).where(KeyReveal.ciphertext.is_not(None)))}


def as_process(secret_key: str, monkeypatch) -> None:
    """Web and worker processes started with this PURSER_SECRET_KEY."""
    monkeypatch.setenv("PURSER_SECRET_KEY", secret_key)
    get_settings.cache_clear()
    wiring.configure_store(get_settings())
    use_cipher(None)


def test_secret_key_rotation_keeps_reveals_working_then_reencrypts_them(db, operator, monkeypatch):
    old, new = Cipher.generate(), Cipher.generate()
    as_process(old, monkeypatch)
    made, dev = waiting_keys(db, 3)
    under_old = ciphertexts(db)
    # The operator puts the new key first and keeps the old one listed.
    as_process(f"{new}, {old}", monkeypatch)
    (first_id, first_secret), *rest = made
    assert db.run(keys.reveal_key, dev, first_id).secret == first_secret
    done = operator("reveals", "reencrypt", secret_key=f"{new},{old}")
    assert done.exit_code == 0 and f"Re-encrypted {len(rest)} waiting secret(s)" in done.stdout
    after = ciphertexts(db)
    assert set(after) == {k for k, _ in rest} and all(after[k] != under_old[k] for k in after)
    # Only the new key is needed now; the old one can be dropped.
    as_process(new, monkeypatch)
    for key_id, secret in rest:
        with pytest.raises(InvalidInput):
            Cipher(old).decrypt(after[key_id])
        assert db.run(keys.reveal_key, dev, key_id).secret == secret


def test_a_secret_under_an_unknown_key_is_refused_with_what_to_do_and_kept(db, operator, monkeypatch):
    lost, stranger = Cipher.generate(), Cipher.generate()
    as_process(lost, monkeypatch)
    [(key_id, secret)], dev = waiting_keys(db, 1)
    as_process(stranger, monkeypatch)  # the old key was dropped too early
    with pytest.raises(InvalidInput, match=r"no longer in PURSER_SECRET_KEY.*Nothing was wiped.*PURSER_SECRET_KEY=new,old.*purser reveals reencrypt"):
        db.run(keys.reveal_key, dev, key_id)
    refused = operator("reveals", "reencrypt", secret_key=stranger)
    assert refused.exit_code == 1 and "no longer in PURSER_SECRET_KEY" in refused.stderr
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    as_process(f"{stranger},{lost}", monkeypatch)  # listed again: nothing was lost
    assert db.run(keys.reveal_key, dev, key_id).secret == secret


def test_a_secret_key_in_dotenv_is_the_one_reveals_use(sqlite_db, restore_cipher, monkeypatch, tmp_path):
    key = Cipher.generate()
    (tmp_path / ".env").write_text(f"PURSER_SECRET_KEY={key}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PURSER_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    wiring.configure_store(get_settings())
    use_cipher(None)
    try:
        [(key_id, secret)], dev = waiting_keys(sqlite_db, 1)
    finally:
        get_settings.cache_clear()
    with sqlite_db.session() as s:
        assert Cipher(key).decrypt(s.get(KeyReveal, key_id).ciphertext) == secret
