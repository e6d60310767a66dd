"""OPENROUTER_MANAGEMENT_KEY: surrounding whitespace is dropped; a key that cannot be sent stops the process at
start, and the provider, naming the setting and never the key; and no HTTP library logs a key, even at DEBUG.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import httpx
import pytest

from purser import wiring
from purser.logs import setup_logging
from purser.settings import Settings
from workers import runtime as runtime_module
from workers.providers.base import PermanentProviderError
from workers.providers.openrouter import OpenRouterProvider

KEY = "sk-or-v1-" + "5e" * 32
#: the loggers of the HTTP libraries Purser's calls go through
HTTP_LOGGERS = ("httpx", "httpcore", "urllib3", "hpack")
BAD = [f"sk-or-v1-QWERTY{inside}ZXCVB" for inside in (" ", "\n", "\t", "\x1b", "é")]


@pytest.fixture(autouse=True)
def no_env_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the settings read ./.env; this test's own come from its arguments
    monkeypatch.delenv("OPENROUTER_MANAGEMENT_KEY", raising=False)


@pytest.mark.parametrize("pasted", [KEY + "\n", f"  {KEY}\r\n", f"\t{KEY} "])
def test_the_settings_drop_whitespace_around_the_management_key(pasted):
    settings = Settings(OPENROUTER_MANAGEMENT_KEY=pasted)
    assert settings.openrouter_management_key.get_secret_value() == KEY
    wiring.check_openrouter_key(settings)  # and start-up takes it


def test_a_management_key_of_only_whitespace_is_no_key():
    assert Settings(OPENROUTER_MANAGEMENT_KEY=" \n").openrouter_management_key is None


@pytest.mark.parametrize("bad", BAD)
def test_start_up_refuses_a_management_key_with_whitespace_or_control_characters_inside(bad):
    settings = Settings(OPENROUTER_MANAGEMENT_KEY=bad + "\n")
    for start in (wiring.check_openrouter_key, wiring.providers):
        with pytest.raises(SystemExit) as caught:
            start(settings)
        message = str(caught.value)
        assert "OPENROUTER_MANAGEMENT_KEY" in message
        assert "QWERTY" not in message and "ZXCVB" not in message


def test_a_worker_process_refuses_it_before_its_first_action(monkeypatch):
    monkeypatch.setattr(runtime_module, "_factory", None)
    monkeypatch.setattr(runtime_module, "_runtime", None)
    with pytest.raises(SystemExit, match="OPENROUTER_MANAGEMENT_KEY"):
        wiring.workers_runtime(Settings(OPENROUTER_MANAGEMENT_KEY=BAD[0]))
    assert runtime_module._factory is None


def test_no_management_key_is_not_refused():
    wiring.check_openrouter_key(Settings())  # OpenRouter is optional; its workspaces are told when a key is made


def test_purser_worker_stops_at_start_with_a_message_and_no_key(tmp_path):
    """`purser worker` as dramatiq loads it: the process exits, saying which setting to fix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "REDIS_URL", "DATABASE_URL"))}
    env |= {"OPENROUTER_MANAGEMENT_KEY": "sk-or-v1-QWERTY\nZXCVB\n", "DATABASE_URL": f"sqlite:///{tmp_path}/purser.db", "PURSER_SECRET_KEY_FILE": str(tmp_path / "secret.key")}
    done = subprocess.run([sys.executable, "-c", "import purser.worker_process"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "OPENROUTER_MANAGEMENT_KEY" in said, said[-2000:]
    assert "QWERTY" not in said and "ZXCVB" not in said


# -- the provider, and the logs at DEBUG ------------------------------------------------


@pytest.fixture
def debug_logging(caplog):
    """A process started with LOG_LEVEL=DEBUG, its records captured; the loggers as they were afterwards."""
    root = logging.getLogger()
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in (*HTTP_LOGGERS, "apscheduler")]
    handlers = list(root.handlers)
    caplog.set_level(logging.DEBUG)
    setup_logging("DEBUG")
    yield caplog
    for logger, level in saved:
        logger.setLevel(level)
    for added in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(added)


def test_a_management_key_ending_in_a_newline_works_and_no_debug_log_shows_it(openrouter, debug_logging, monkeypatch):
    monkeypatch.setattr(openrouter, "management_key", "sk-or-v1-" + "ab12" * 16)
    p = OpenRouterProvider(openrouter.management_key + "\n", openrouter.url + "/api/v1")
    try:
        p.create(name="purser-nl", limit_micros=None, limit_reset=None, expires_at=None)
        assert len(p.usage()) == 1
    finally:
        p.close()
    assert "ab12ab12" not in debug_logging.text


def test_at_debug_no_http_library_logs_a_header_it_refused(openrouter, debug_logging):
    with httpx.Client(headers={"Authorization": "Bearer sk-or-v1-inner\nsecret"}) as client:
        with pytest.raises(httpx.LocalProtocolError):
            client.get(openrouter.url + "/api/v1/keys")
    assert "secret" not in debug_logging.text and "sk-or-v1-inner" not in debug_logging.text


@pytest.mark.parametrize("inside", [" ", "\n", "\r\n", "\t", "\x00", "\x7f", "é", "\u00a0"])
def test_the_provider_refuses_a_management_key_it_cannot_send_naming_the_setting_not_the_key(inside):
    with pytest.raises(PermanentProviderError, match="OPENROUTER_MANAGEMENT_KEY") as caught:
        OpenRouterProvider(f" sk-or-v1-QWERTY{inside}ZXCVB\n")
    message = str(caught.value)
    assert "QWERTY" not in message and "ZXCVB" not in message and "sk-or" not in message


def test_a_header_httpx_refuses_to_send_is_permanent_not_could_not_reach(openrouter, monkeypatch):
    def refuse(*args, **kwargs):
        raise httpx.LocalProtocolError("Illegal header value b'Bearer sk-or-v1-some-management-key'")

    p = OpenRouterProvider("sk-or-v1-some-management-key", openrouter.url + "/api/v1")
    monkeypatch.setattr(httpx.Client, "request", refuse)
    with pytest.raises(PermanentProviderError, match="OPENROUTER_MANAGEMENT_KEY") as caught:
        p.usage()
    assert "some-management-key" not in str(caught.value)
