"""The import rules of ARCHITECTURE.md, enforced by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (path glob, forbidden top-level import prefixes)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("schema/**/*.py", ("twisted", "redis", "gateway", "adapters")),
    ("adapters/*/codec.py", ("twisted", "redis", "gateway")),
    ("adapters/*/session.py", ("twisted", "redis", "gateway")),
    ("adapters/*/translate.py", ("twisted", "redis", "gateway")),
    ("adapters/*/protocol.py", ("redis", "gateway")),
    ("adapters/**/*.py", ("redis", "gateway")),
    ("gateway/router.py", ("twisted", "redis", "adapters")),
    ("gateway/aliases.py", ("twisted", "redis", "adapters")),
    ("gateway/store/**/*.py", ("twisted", "adapters")),
]


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations() -> list[str]:
    found = []
    for pattern, forbidden in RULES:
        for path in sorted(ROOT.glob(pattern)):
            for name in imported(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    # A network adapter never imports another network.
    for path in sorted(ROOT.glob("adapters/*/**/*.py")):
        own = path.relative_to(ROOT / "adapters").parts[0]
        for name in imported(path):
            parts = name.split(".")
            if (
                parts[0] == "adapters"
                and len(parts) > 1
                and parts[1]
                not in (
                    own,
                    "contract",
                    "aio",
                    "registry",
                    "output_bound",  # shared glue: bounded output per connection
                    "admission",  # shared glue: command rates, connections per source
                )
            ):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_import_layers_hold() -> None:
    """No module imports a layer it must not (ARCHITECTURE.md's table)."""
    assert violations() == []


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    """The walker sees an import hidden inside a function."""
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    import redis.asyncio\n    from twisted.internet import reactor\n"
    )
    assert imported(module) == {"redis.asyncio", "twisted.internet"}


@pytest.mark.parametrize("package", ["schema", "gateway", "adapters"])
def test_packages_are_typed(package: str) -> None:
    """Each package ships py.typed."""
    assert (ROOT / package / "py.typed").exists()
