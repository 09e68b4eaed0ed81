"""``python -m tests.faults [--short] [--only NAME ...] [--record]`` (``./dev faults``):
run every fault of tests/faults/suite.py and print its figures; ``--record`` appends
the table to docs/RELIABILITY.md under "## Fault-injection runs"."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from tests.faults.suite import LONG, SHORT, FaultResult, machine, run_all

DOCS = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
HEADING = "## Fault-injection runs"


def table(results: list[FaultResult]) -> str:
    head = (
        "| fault | acked | delivered | lost | stranded | dup | out of order | failed back "
        "(of them acked first) | cut | silent | pending | recover | peak RSS MiB (a/b) | "
        "p99 quiet -> fault ms |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        rss = "/".join(f"{r.peak_rss_mib.get(n, 0):.0f}" for n in ("node-a", "node-b"))
        rec = "never" if r.recover_s is None else f"{r.recover_s:.1f} s"
        rows.append(
            f"| {r.fault} | {r.acknowledged} | {r.delivered} | {r.lost} | {r.stranded} | "
            f"{r.duplicated} | {r.out_of_order} | {r.failed_back} ({r.late_failed}) | {r.cut} | {r.silent} | {r.pending} | {rec} | {rss} | "
            f"{r.quiet_p99_ms:.0f} -> {r.fault_p99_ms:.0f} |"
        )
    return head + "\n".join(rows) + "\n"


def record(results: list[FaultResult], form: str) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = f"\n### {when}, commit {commit}, {form} form, {machine()}\n\n{table(results)}"
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Reliability\n"
    if HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n"
    DOCS.write_text(text.rstrip("\n") + "\n" + block, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--short", action="store_true", help="a few seconds per fault (CI)")
    parser.add_argument("--only", nargs="*", default=[], help="faults whose name holds this")
    parser.add_argument("--record", action="store_true", help="append the table to the docs")
    args = parser.parse_args(argv)
    timing = SHORT if args.short else LONG
    results = asyncio.run(run_all(timing, args.only, lambda s: print(s, flush=True)))
    print(table(results))
    if args.record:
        record(results, "short" if args.short else "long")
    return 0


if __name__ == "__main__":
    sys.exit(main())
