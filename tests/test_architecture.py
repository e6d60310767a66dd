"""The architecture as a contract (pyproject.toml, [tool.importlinter]), with proof that it bites.

docs/design.md, "Layers", draws what the contracts hold: the store imports no process,
Slack or queue; bot reads the store through its operations, never its models; bot and
workers do not import each other (workers render with bot's Block Kit builders and post
with its Web API client); only purser wires processes together; no package has a cycle.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("store", "bot", "workers", "gateway", "sandbox", "purser")
BIN = Path(sys.executable).parent
#: vulture's confidence from which an unused name counts as dead code (below it: names that
#: Bolt, SQLAlchemy, dramatiq or Typer find by registration or by their own reflection)
DEAD_CODE_CONFIDENCE = 80
MOST_LINES = 400


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": str(BIN), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_architecture_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "6 kept, 0 broken" in done.stdout


def test_the_contract_fails_when_a_bot_module_imports_the_store_models(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    home = tmp_path / "bot" / "home.py"
    home.write_text(home.read_text() + "\nfrom store.models import ApiKey  # the leak the contract is there to stop\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "bot reads the store through its operations, never its models BROKEN" in done.stdout
    assert "bot.home -> store.models" in done.stdout


def test_no_dead_code():
    paths = [str(ROOT / p) for p in PACKAGES]
    done = subprocess.run([str(BIN / "vulture"), *paths, "--min-confidence", str(DEAD_CODE_CONFIDENCE), "--exclude", "*/migrations/*"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout


def test_no_module_is_over_400_lines():
    """Migrations are generated and benchmarks are scripts; everything else stays readable in one sitting."""
    long = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in (".venv", "bench", "var") or "migrations" in parts or parts[0].startswith("."):
            continue
        lines = len(path.read_text().splitlines())
        if lines > MOST_LINES:
            long[str(path.relative_to(ROOT))] = lines
    assert not long, long
