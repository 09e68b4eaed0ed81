"""What the numbers were measured on: CPU, cores, RAM, kernel, Python, commit, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe() -> dict[str, str]:
    commit = _git("rev-parse", "--short=12", "HEAD")
    # Only the code under test counts: docs and the bench itself change with every run.
    dirty = _git("status", "--porcelain", "--", "gateway", "adapters", "schema")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "ram": f"{_ram_gib():.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit
        + (" (with uncommitted changes to the code)" if dirty and dirty != "unknown" else ""),
    }
