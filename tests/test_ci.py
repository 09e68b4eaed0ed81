""".ci/run runs the README's test command, then lint, and fails when either fails or
when no test ran (pytest's exit 5). Run against a stand-in ./dev."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAKE_DEV = """#!/bin/sh
echo "$*" >>"$CI_LOG"
case "$1" in
    test) exit "$TEST_EXIT" ;;
    lint) exit "$LINT_EXIT" ;;
esac
exit 2
"""


def readme_test_command() -> str:
    """The command the README's Development section says CI runs."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"`\.ci/run` is what CI runs: `(\./dev test[^`]*)`", readme)
    assert match, "README does not say which test command CI runs"
    return match[1]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run has the README's test command as a line of its own, and the README's
    quick start shows the same command."""
    command = readme_test_command()
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert any(line.startswith(command + " ") or line == command for line in lines)
    assert "./dev test" in (REPO / "README.md").read_text(encoding="utf-8").split("```")[1]


def run_ci(tmp_path: Path, test_exit: int, lint_exit: int) -> tuple[int, str, list[str]]:
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "dev").write_text(FAKE_DEV)
    (tmp_path / "dev").chmod(0o755)
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    (fakebin / "tshark").write_text("#!/bin/sh\n")  # present: no apt-get from a test
    (fakebin / "tshark").chmod(0o755)
    log = tmp_path / "calls.log"
    env = dict(os.environ, CI_LOG=str(log), TEST_EXIT=str(test_exit), LINT_EXIT=str(lint_exit))
    env["PATH"] = f"{fakebin}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stderr, log.read_text().splitlines()


def test_ci_passes_when_tests_and_lint_pass(tmp_path: Path) -> None:
    """Both green: exit 0, the README's command then lint."""
    code, _, calls = run_ci(tmp_path, 0, 0)
    assert code == 0
    assert calls == [readme_test_command().removeprefix("./dev "), "lint"]


@pytest.mark.parametrize(
    ("test_exit", "lint_exit", "said"),
    [(1, 0, "tests failed"), (5, 0, "no tests"), (0, 1, "lint failed"), (2, 1, "tests failed")],
)
def test_ci_fails_when_anything_fails(
    tmp_path: Path, test_exit: int, lint_exit: int, said: str
) -> None:
    """Failing tests, no tests collected (exit 5) or failing lint: non-zero, with a line
    saying which; lint still runs after failing tests."""
    code, stderr, calls = run_ci(tmp_path, test_exit, lint_exit)
    assert code != 0
    assert said in stderr
    assert calls[-1] == "lint"
