"""Reproducible installs: requirements/dev.lock and requirements/runtime.lock pin every
requirement of pyproject.toml with hashes, agree with each other, and are what ./dev
and the Containerfile install (docs/adr/0011-locked-installs.md)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
DEV_LOCK = REPO / "requirements" / "dev.lock"
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"

PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)(?: ; (?P<marker>[^\\]+?))? *\\?$"
)


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str
    hashes: int


def read_lock(path: Path) -> list[Pin]:
    """Every ``name==version [; marker]`` entry of a lock with its number of hashes."""
    pins: list[Pin] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("    --hash=sha256:"):
            last = pins.pop()
            pins.append(Pin(last.name, last.version, last.marker, last.hashes + 1))
        elif line and not line.startswith((" ", "#")):
            match = PIN.match(line)
            assert match, f"{path.name}: not a pinned requirement: {line!r}"
            name = canonicalize_name(match["name"])
            pins.append(Pin(name, match["version"], match["marker"] or "", 0))
    return pins


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


RUNTIME = names(PYPROJECT["project"]["dependencies"])
DEV = names(PYPROJECT["project"]["optional-dependencies"]["dev"])
BUILD = names(PYPROJECT["build-system"]["requires"])


@pytest.mark.parametrize("lock", [DEV_LOCK, RUNTIME_LOCK], ids=lambda p: p.name)
def test_every_entry_is_pinned_with_hashes(lock: Path) -> None:
    """Each package in the lock has one exact version (per marker) and sha256 hashes."""
    pins = read_lock(lock)
    assert pins
    assert all(pin.hashes >= 1 for pin in pins), [p.name for p in pins if not p.hashes]
    keys = [(pin.name, pin.marker) for pin in pins]
    assert len(keys) == len(set(keys))


def test_the_dev_lock_covers_pyproject() -> None:
    """Every runtime dependency, dev extra and build requirement is in dev.lock: a
    dependency added to pyproject.toml without ``./dev lock`` fails here."""
    locked = {pin.name for pin in read_lock(DEV_LOCK)}
    assert locked >= RUNTIME | DEV | BUILD, sorted((RUNTIME | DEV | BUILD) - locked)


def test_the_runtime_lock_has_the_runtime_only() -> None:
    """runtime.lock (the Containerfile's) has every runtime dependency and the build
    backend, and none of the dev tools."""
    locked = {pin.name for pin in read_lock(RUNTIME_LOCK)}
    assert locked >= RUNTIME | BUILD, sorted((RUNTIME | BUILD) - locked)
    assert not locked & (DEV - RUNTIME), sorted(locked & (DEV - RUNTIME))


def test_both_locks_agree() -> None:
    """A package in both locks has the same version in both (the runtime lock is
    resolved under the dev lock's constraints)."""
    dev = {(pin.name, pin.marker): pin.version for pin in read_lock(DEV_LOCK)}
    for pin in read_lock(RUNTIME_LOCK):
        assert dev.get((pin.name, pin.marker)) == pin.version, pin


def test_build_in_matches_build_system_requires() -> None:
    """requirements/build.in names what [build-system] requires (locked for
    ``pip install --no-build-isolation``)."""
    lines = (REPO / "requirements" / "build.in").read_text(encoding="utf-8").splitlines()
    wanted = [line for line in lines if line.strip() and not line.startswith("#")]
    assert sorted(wanted) == sorted(PYPROJECT["build-system"]["requires"])


def test_dev_and_the_image_install_from_the_locks() -> None:
    """./dev installs dev.lock with --require-hashes, then the project without deps;
    the Containerfile does the same with runtime.lock."""
    dev = (REPO / "dev").read_text(encoding="utf-8")
    assert "LOCK=requirements/dev.lock" in dev
    assert 'pip install --quiet --require-hashes -r "$LOCK"' in dev
    assert "--no-deps -e ." in dev
    image = (REPO / "deploy" / "Containerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/runtime.lock" in image
    assert "--no-deps" in image
