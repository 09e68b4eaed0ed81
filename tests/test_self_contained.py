"""A clean clone runs every test: nothing under tests/ or bench/ reads a path outside the
repository, and every captured vector the tests replay is in tests/vectors/."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO / "tests" / "vectors"
CHECKED = ("tests", "bench")

# Absolute paths under these roots are somebody's machine, never the repository.
# (/usr/bin/... system programs are fine: they are not files of ours.)
HOST_ROOTS = {"work", "home", "root", "opt", "srv", "mnt", "media", "Users", "tmp", "var"}
SHARED_VECTORS = "/".join(("shared", "vectors"))  # spelt so this file does not match itself


def _sources() -> Iterator[Path]:
    for folder in CHECKED:
        yield from sorted((REPO / folder).rglob("*.py"))


def _path_escapes(path: Path, tree: ast.AST) -> list[str]:
    """``Path(__file__)...parents[k]`` or ``.parent`` chains that climb above the repo,
    and string literals naming host paths or ``..``."""
    depth = len(path.relative_to(REPO).parts) - 1  # parents[depth] is the repo root
    problems: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
            and node.slice.value > depth
        ):
            problems.append(f"{where}: parents[{node.slice.value}] is outside the repository")
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            chain, inner = 0, node
            while isinstance(inner, ast.Attribute) and inner.attr == "parent":
                chain, inner = chain + 1, inner.value
            if "__file__" in ast.unparse(inner) and chain > depth + 1:
                problems.append(f"{where}: .parent x{chain} is outside the repository")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            parts = text.split("/")
            if text.startswith("/") and len(parts) > 2 and parts[1] in HOST_ROOTS:
                problems.append(f"{where}: absolute host path {text!r}")
            if os.pardir in parts or SHARED_VECTORS in text:
                problems.append(f"{where}: path outside the repository {text!r}")
    return problems


def test_no_test_or_bench_file_reads_outside_the_repository() -> None:
    """No module under tests/ or bench/ names a path above the repo or on the host."""
    problems: list[str] = []
    for path in _sources():
        problems += _path_escapes(path, ast.parse(path.read_text(encoding="utf-8")))
    assert problems == []


@pytest.mark.parametrize(
    "source",
    [
        'VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "oscar"',
        'VECTORS = Path("/work/shared/" "vectors/msn")',
        'VECTORS = Path(__file__).parent.parent.parent.parent / "x"',
        'VECTORS = Path("../shared")',
    ],
)
def test_the_guard_catches_the_old_vector_paths(source: str) -> None:
    """The guard flags the paths that once made collection fail on other machines."""
    module = REPO / "tests" / "oscar" / "support.py"
    assert _path_escapes(module, ast.parse(source)) != []


def _vector_names(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and value.endswith(".txt") and "-" in value:
                names.add(value)
    return names


@pytest.mark.parametrize("network", ["oscar", "msn"])
def test_every_replayed_vector_is_in_the_repository(network: str) -> None:
    """Each capture a network's tests name exists in tests/vectors/<network>/ and is
    listed in tests/vectors/README.md with the client it came from."""
    needed = _vector_names(REPO / "tests" / network)
    assert needed, f"no vector names found in tests/{network}"
    readme = (VECTORS / "README.md").read_text(encoding="utf-8")
    for name in sorted(needed):
        assert (VECTORS / network / name).is_file(), f"tests/vectors/{network}/{name} missing"
        assert f"{network}/{name}" in readme, f"{network}/{name} not described in the README"


def test_vector_loaders_point_into_the_repository() -> None:
    """The OSCAR and MSN loaders read tests/vectors/, not a folder beside the clone."""
    from tests.msn import msn_fakes
    from tests.oscar import support

    assert support.VECTORS == VECTORS / "oscar"
    assert msn_fakes.VECTORS == VECTORS / "msn"
