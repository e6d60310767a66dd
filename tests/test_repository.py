"""What is committed: source, docs and small pictures — never a build's output or a big blob."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 1_000_000
#: what builds, installs and local runs make; none of it belongs in the repository
ARTIFACTS = ("*.whl", "*.tar.gz", "*.tgz", "*.zip", "*.egg", "*.db", "*.sqlite", "*.sqlite3", "*.pyc", "*.so", "*.log")


def tracked() -> list[str]:
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in done.stdout.decode().split("\0") if name]


def oversized(names: list[str], root: Path = ROOT) -> list[str]:
    return [f"{n} ({(root / n).stat().st_size:,} bytes)" for n in names if (root / n).is_file() and (root / n).stat().st_size > MAX_BYTES]


def artifacts(names: list[str]) -> list[str]:
    return [n for n in names if any(fnmatch.fnmatch(Path(n).name, pattern) for pattern in ARTIFACTS)]


def test_no_committed_file_is_over_a_megabyte():
    assert oversized(tracked()) == [], "files over 1 MB are committed; keep them out of the repository"


def test_no_built_artifact_is_committed():
    assert artifacts(tracked()) == [], "built artifacts are committed; remove them (git rm) — .gitignore lists the usual ones"


def test_the_checks_catch_what_they_are_for(tmp_path):
    (tmp_path / "big.bin").write_bytes(b"\0" * (MAX_BYTES + 1))
    (tmp_path / "small.py").write_text("x = 1\n")
    assert oversized(["big.bin", "small.py"], tmp_path) == [f"big.bin ({MAX_BYTES + 1:,} bytes)"]
    assert artifacts(["pyflakes-4.1.0-py2.py3-none-any.whl", "dist/purser-0.1.0.tar.gz", "var/purser.db", "store/db.py", "docs/sandbox.png"]) == [
        "pyflakes-4.1.0-py2.py3-none-any.whl",
        "dist/purser-0.1.0.tar.gz",
        "var/purser.db",
    ]
