"""Sampling profile of the running gateway with py-spy, summarised as text.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``),
leaf last, idle samples left out. The summary ranks functions by self samples (the
leaf), project functions by inclusive samples (anywhere on the stack), the time spent
in the Redis client by the project function that called it, and files by self samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TOP = 30


def find_pyspy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def start(pid: int, raw: Path, seconds: float, rate: int = 200) -> subprocess.Popen[bytes] | None:
    binary = find_pyspy()
    if binary is None:
        return None
    command = [binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(raw)]
    command += ["--duration", str(max(1, round(seconds))), "--rate", str(rate)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (file path without line)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({_short(path)})"


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", f"{REPO}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


PROJECT = ("gateway/", "adapters/", "schema/")


_ROOTS = ("<module> (gateway/__main__.py)", "main (gateway/cli.py)", "run (gateway/runtime.py)")
"""The process's entry frames, on every stack: left out of the project table."""


def _is_project(function: str) -> bool:
    return function.rsplit(" (", 1)[-1].startswith(PROJECT) and function not in _ROOTS


def _is_redis(function: str) -> bool:
    return function.rsplit(" (", 1)[-1].startswith("redis/")


def summarise(raw: Path, title: str) -> str:
    self_count: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    project: Counter[str] = Counter()
    redis_sites: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        leaf = _function(frames[-1])
        self_count[leaf] += count
        files[leaf.rsplit(" (", 1)[1].rstrip(")")] += count
        functions = [_function(f) for f in frames]
        for function in set(functions):
            inclusive[function] += count
            if _is_project(function):
                project[function] += count
        # Time inside the Redis client, charged to the project frame that called it.
        first_redis = next((i for i, f in enumerate(functions) if _is_redis(f)), None)
        if first_redis is not None:
            caller = next(
                (f for f in reversed(functions[:first_redis]) if _is_project(f)),
                "(event loop callbacks: replies read)",
            )
            redis_sites[caller] += count
    lines = [title, f"samples (non-idle): {total}", ""]
    if not total:
        return "\n".join([*lines, "no samples"]) + "\n"

    def table(heading: str, counter: Counter[str]) -> None:
        lines.append(heading)
        for name, count in counter.most_common(TOP):
            lines.append(f"{100.0 * count / total:6.1f}%  {name}")
        lines.append("")

    table("== self time by function (leaf frame)", self_count)
    table("== inclusive time, project code only (gateway/, adapters/, schema/)", project)
    table("== time inside the Redis client, by the project function that called it", redis_sites)
    table("== self time by file", files)
    table("== inclusive time by function (anywhere on the stack)", inclusive)
    return "\n".join(lines)
