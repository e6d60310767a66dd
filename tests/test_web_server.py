"""`purser web`'s gunicorn: the command line the benchmarks share, and the hook that keeps the app's objects out of the collector and shortens the GIL's switch interval."""

from __future__ import annotations

import subprocess
import sys

from gunicorn.app.wsgiapp import WSGIApplication

from typer.testing import CliRunner

from purser import web_server
from purser.cli import app
from purser.settings import get_settings


def test_gunicorn_reads_the_hook_and_the_settings_from_the_command(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gunicorn", *web_server.command(3, 5, "127.0.0.1:0")[3:]])
    cfg = WSGIApplication().cfg
    assert cfg.post_worker_init is web_server.post_worker_init
    assert (cfg.worker_class_str, cfg.workers, cfg.threads, cfg.bind) == ("gthread", 3, 5, ["127.0.0.1:0"])


def test_purser_web_runs_that_command(monkeypatch):
    ran = []
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setattr("purser.wiring.check_secret_key", lambda: None)
    monkeypatch.setattr("os.execvp", lambda path, argv: ran.append(argv))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["web", "--port", "4321", "--workers", "3", "--threads", "5"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert ran == [web_server.command(3, 5, "0.0.0.0:4321")]


# In a process of its own: freezing is for the rest of the process's life.
FREEZE = """
import gc, weakref
from typer.testing import CliRunner

from purser import web_server
from purser.cli import app
from purser.settings import get_settings

class Node:
    pass

kept, lost = Node(), Node()
kept.me = kept  # alive: frozen with the app
lost.me = lost  # garbage in a cycle: collected first, never frozen
gone = weakref.ref(lost)
del lost
web_server.post_worker_init(None)
print(gc.get_freeze_count() > 0, gone() is None, gc.get_count()[2] == 0 and len(gc.get_objects(2)) < 100)
import sys
print(sys.getswitchinterval() == web_server.SWITCH_INTERVAL < 0.005)
"""


def test_a_worker_freezes_what_it_loaded_after_collecting_its_garbage_and_switches_threads_promptly():
    done = subprocess.run([sys.executable, "-c", FREEZE], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "True", "True"]
