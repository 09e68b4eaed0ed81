"""./dev installs exactly the lock file, reinstalls when the lock's content changes, and
rebuilds a .venv that another (or a vanished) Python made. Run against a stand-in
interpreter that records what pip was asked, so nothing is downloaded."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/bin/sh
# Stand-in interpreter: its version is in VERSION beside it; pip and pytest calls are logged.
here=$(dirname "$0")
case "$1" in
    -c) cat "$here/VERSION"; exit 0 ;;
    -m)
        mod=$2; shift 2
        case "$mod" in
            venv)
                mkdir -p "$1/bin"; cp "$0" "$1/bin/python"; cp "$here/VERSION" "$1/bin/VERSION"
                printf 'version = %s.7\\n' "$(cat "$here/VERSION")" >"$1/pyvenv.cfg"
                echo "venv" >>"$FAKE_LOG" ;;
            *) echo "$mod${*:+ $*}" >>"$FAKE_LOG" ;;
        esac
        exit 0 ;;
esac
exit 1
"""


class Checkout:
    """A copy of ./dev beside a small lock and pyproject, with a fake python3.11 first
    on PATH."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "requirements").mkdir()
        shutil.copy(REPO / "dev", root / "dev")
        (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
        (root / "requirements" / "dev.lock").write_text("a==1 --hash=sha256:00\n")
        self.bin = root / "fakebin"
        self.bin.mkdir()
        self.python = self.bin / "python3.11"
        self.python.write_text(FAKE_PYTHON)
        self.python.chmod(0o755)
        (self.bin / "VERSION").write_text("3.11\n")
        self.log = root / "calls.log"

    def run(self, *args: str, python: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
        env["PATH"] = f"{self.bin}{os.pathsep}{env['PATH']}"
        env["FAKE_LOG"] = str(self.log)
        if python is not None:
            env["PYTHON"] = str(python)
        self.log.write_text("")
        return subprocess.run(
            ["sh", str(self.root / "dev"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


INSTALL = [
    "pip install --quiet --require-hashes -r requirements/dev.lock",
    "pip install --quiet --no-build-isolation --no-deps -e .",
]


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return Checkout(tmp_path)


def test_a_fresh_checkout_installs_exactly_the_lock(checkout: Checkout) -> None:
    """No .venv: one is made, the lock installed with hashes required, the project
    added without resolving anything, then the command runs."""
    result = checkout.run("test", "-q")
    assert result.returncode == 0, result.stderr
    assert checkout.calls() == ["venv", *INSTALL, "pytest -q"]


def test_the_stamp_follows_the_lock_content_not_its_mtime(checkout: Checkout) -> None:
    """An unchanged lock installs nothing; a touched but equal one neither; an edited
    lock (or pyproject) installs again."""
    checkout.run("test")
    assert checkout.run("test").returncode == 0
    assert checkout.calls() == ["pytest"]
    lock = checkout.root / "requirements" / "dev.lock"
    os.utime(lock, (lock.stat().st_atime + 100, lock.stat().st_mtime + 100))
    checkout.run("test")
    assert checkout.calls() == ["pytest"]
    lock.write_text("a==2 --hash=sha256:11\n")
    checkout.run("test")
    assert checkout.calls() == [*INSTALL, "pytest"]
    (checkout.root / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    checkout.run("test")
    assert checkout.calls() == [*INSTALL, "pytest"]


def test_a_venv_of_another_python_is_rebuilt_with_one_line(checkout: Checkout) -> None:
    """A .venv whose python is 3.12 is removed and made again by 3.11, saying so once."""
    checkout.run("test")
    (checkout.root / ".venv" / "bin" / "VERSION").write_text("3.12\n")
    result = checkout.run("test")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "dev: .venv was made by Python 3.12, not 3.11: rebuilding it with python3.11"
    ]
    assert checkout.calls() == ["venv", *INSTALL, "pytest"]
    assert (checkout.root / ".venv" / "bin" / "VERSION").read_text() == "3.11\n"


def test_a_venv_whose_python_is_gone_is_rebuilt(checkout: Checkout) -> None:
    """A .venv whose interpreter no longer exists (a removed pyenv version) is rebuilt."""
    checkout.run("test")
    python = checkout.root / ".venv" / "bin" / "python"
    python.unlink()
    python.symlink_to(checkout.root / "gone" / "python3.11")
    result = checkout.run("test")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "dev: .venv has a Python that no longer runs (it was 3.11.7): rebuilding it with python3.11"
    ]
    assert checkout.calls() == ["venv", *INSTALL, "pytest"]


def test_a_wrong_python_is_refused_with_a_clear_message(checkout: Checkout) -> None:
    """PYTHON naming a 3.12 interpreter: exit 1, saying 3.11 is needed; nothing made."""
    other = checkout.root / "other"
    other.mkdir()
    shutil.copy(checkout.python, other / "python3.12")
    (other / "VERSION").write_text("3.12\n")
    result = checkout.run("test", python=other / "python3.12")
    assert result.returncode == 1
    assert "needs Python 3.11" in result.stderr and "is 3.12" in result.stderr
    assert not (checkout.root / ".venv").exists()
