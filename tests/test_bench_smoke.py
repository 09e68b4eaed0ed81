"""The benchmark harness, end to end in its tiny mode: a real Redis, a real gateway
process, the relay baseline and the load generator process over 127.0.0.1."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import report
from bench.ledger import Ledger, message_body
from bench.suite import PLANS, run_suite

pytestmark = pytest.mark.slow

PATHS = {"relay", "msn>oscar", "msn>msn", "oscar>oscar", "oscar>msn"}


def test_ledger_counts_duplicates_reordering_and_loss() -> None:
    """The accounting the smoke run relies on sees a duplicate, a reordering and a loss."""
    ledger = Ledger()
    bodies = [ledger.next_body(1, 7, 1_000 + i) for i in range(4)]
    assert all(len(b) == len(message_body(1, 7, 0, 1_000)) for b in bodies)
    for body in (bodies[1], bodies[0], bodies[1]):
        ledger.receive_text(f"<HTML><BODY>{body}</BODY></HTML>", 5_000)
    tally = ledger.steps[1]
    assert (tally.sent, tally.received, tally.duplicates, tally.out_of_order) == (4, 2, 1, 1)
    assert tally.outstanding == 2
    assert sorted(tally.latencies_ns) == [3_999, 4_000]
    ledger.receive_text("bm 9 7 0 1", 6_000)  # a step this ledger never sent in
    assert ledger.foreign == 1


def test_tiny_run_delivers_every_message_exactly_once(tmp_path: Path) -> None:
    """Every path (and the relay) delivers every message once, in order, and the
    result rows, figures, targets, table, Markdown and plot come out well formed."""
    results = run_suite(PLANS["tiny"], cache=tmp_path / "cache", log=False)

    assert {row.path for row in results.rows} == PATHS
    for row in results.rows:
        assert row.sent > 0, row
        assert (row.delivered, row.lost, row.duplicates, row.out_of_order) == (
            row.sent,
            0,
            0,
            0,
        ), row
        assert 0 < row.p50_ms <= row.p95_ms <= row.p99_ms <= row.max_ms, row
        assert row.delivered_per_s > 0 and row.gateway_cpu_us >= 0, row
        assert all(math.isfinite(v) for v in (row.offered, row.loadgen_cpu_pct)), row
    loads = {(row.path, row.load) for row in results.rows}
    assert {("relay", "closed"), ("msn>oscar", "closed"), ("oscar>oscar", "burst")} <= loads
    # CPU is read in clock ticks: only the closed loops run long enough to always show it.
    closed = [r for r in results.rows if r.load == "closed"]
    assert all(r.gateway_cpu_us > 0 for r in closed)
    assert all(r.redis_cpu_us > 0 for r in closed if r.suite == "gateway")

    logins = {entry["network"]: entry for entry in results.figures["logins"]}
    assert logins["oscar"]["ok"] == PLANS["tiny"].oscar_users and logins["msn"]["ok"] == 4
    (memory,) = results.figures["memory"]
    assert memory["connections"] == PLANS["tiny"].oscar_users
    assert memory["rss_after_bytes"] > 0 and memory["idle_cpu_pct"] >= 0
    assert set(results.machine) >= {"date", "cpu", "cores", "ram", "kernel", "python", "commit"}
    assert len(results.targets) == 4
    assert all(t["met"] in (True, False, None) and t["measured"] for t in results.targets)
    assert not any("traceback" in note for note in results.notes), results.notes

    table = report.text_table(results)
    assert "msn>oscar" in table and "target" in table
    markdown = report.markdown(results, "bench/plot.png")
    assert markdown.count("| msn>oscar |") == 2  # the fixed step and the closed loop
    png = tmp_path / "plot.png"
    assert report.plot(results, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
