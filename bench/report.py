"""Result rows, the printed table, the Markdown record and the latency plot."""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.ledger import percentile


@dataclass(frozen=True)
class MessageRow:
    """One measured step of one path."""

    suite: str  # "gateway" or "relay"
    path: str  # "msn>oscar", ...
    load: str  # "fixed", "closed" or "burst"
    offered: float  # target msg/s (fixed); messages in flight (closed); senders (burst)
    sent: int
    delivered: int
    sent_per_s: float
    delivered_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    duplicates: int
    out_of_order: int
    skipped: int
    gateway_cpu_us: float  # per delivered message (relay process for the relay)
    redis_cpu_us: float
    loadgen_cpu_pct: float
    loadgen_gc_max_ms: float = 0.0  # longest GC pause of the load generator in the step
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def saturated(self) -> bool:
        return self.load == "fixed" and (
            self.delivered_per_s < 0.9 * self.offered or self.p99_ms > 1000 or self.lost > 0
        )


def message_row(
    suite: str,
    path: str,
    load: str,
    offered: float,
    duration: float,
    result: dict[str, Any],
) -> MessageRow:
    latencies = array("q")
    latencies.frombytes(result["latencies"])
    ordered = sorted(latencies)
    received = int(result["received"])
    sent = int(result["sent"])
    span = (result["last_receive_ns"] - result["first_send_ns"]) / 1e9 if received else 0.0
    wall = float(result.get("wall_s") or 0.0)
    per_message = 1e6 / received if received else 0.0

    def ms(value: int) -> float:
        return round(value / 1e6, 3)

    return MessageRow(
        suite=suite,
        path=path,
        load=load,
        offered=offered,
        sent=sent,
        delivered=received,
        sent_per_s=round(sent / duration, 1) if duration else 0.0,
        delivered_per_s=round(received / span, 1) if span > 0 else 0.0,
        p50_ms=ms(percentile(ordered, 0.50)),
        p95_ms=ms(percentile(ordered, 0.95)),
        p99_ms=ms(percentile(ordered, 0.99)),
        max_ms=ms(ordered[-1] if ordered else 0),
        lost=sent - received,
        duplicates=int(result["duplicates"]),
        out_of_order=int(result["out_of_order"]),
        skipped=int(result["skipped"]),
        gateway_cpu_us=round(float(result.get("gateway_cpu_s", 0.0)) * per_message, 1),
        redis_cpu_us=round(float(result.get("redis_cpu_s", 0.0)) * per_message, 1),
        loadgen_cpu_pct=round(100.0 * float(result.get("cpu_s", 0.0)) / wall, 1) if wall else 0.0,
        loadgen_gc_max_ms=round(float(result.get("gc_max_ms", 0.0)), 1),
        errors={str(k): int(v) for k, v in dict(result.get("errors", {})).items()},
    )


@dataclass
class Results:
    mode: str
    machine: dict[str, str]
    rows: list[MessageRow] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # logins, memory, ...
    redis_bench: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=1, sort_keys=True)


# ---------------------------------------------------------------- targets


def _best(rows: Sequence[MessageRow], paths: Sequence[str]) -> MessageRow | None:
    candidates = [r for r in rows if r.path in paths and r.delivered]
    return max(candidates, key=lambda r: r.delivered_per_s, default=None)


CROSS = ("msn>oscar", "oscar>msn")


def evaluate_targets(results: Results) -> list[dict[str, Any]]:
    rows = results.rows
    out: list[dict[str, Any]] = []
    best = _best(rows, CROSS)
    out.append(
        {
            "target": ">= 20,000 cross-network msg/s on one node",
            "measured": f"{best.delivered_per_s:,.0f} msg/s ({best.path}, {best.load})"
            if best
            else "n/a",
            "met": bool(best and best.delivered_per_s >= 20_000),
        }
    )
    at_5k = [r for r in rows if r.path in CROSS and r.load == "fixed" and r.offered == 5000]
    if at_5k:
        worst = max(at_5k, key=lambda r: r.p99_ms)
        out.append(
            {
                "target": "p99 <= 5 ms at 5,000 msg/s (cross-network)",
                "measured": f"p99 {worst.p99_ms:,.1f} ms ({worst.path}, delivered "
                f"{worst.delivered_per_s:,.0f} msg/s)",
                "met": worst.p99_ms <= 5.0 and not worst.saturated,
            }
        )
    elif best is not None and best.delivered_per_s < 5000:
        out.append(
            {
                "target": "p99 <= 5 ms at 5,000 msg/s (cross-network)",
                "measured": f"cannot carry 5,000 msg/s: saturates at {best.delivered_per_s:,.0f} "
                "msg/s (fixed steps stop at the first saturated one)",
                "met": False,
            }
        )
    else:
        out.append(
            {
                "target": "p99 <= 5 ms at 5,000 msg/s (cross-network)",
                "measured": "no 5,000 msg/s cross-network step ran",
                "met": None,
            }
        )
    memory = results.figures.get("memory", [])
    if memory:
        largest = max(memory, key=lambda m: m["connections"])
        kib = largest["rss_per_connection_bytes"] / 1024
        out.append(
            {
                "target": "<= 16 KiB RSS per idle logged-in connection",
                "measured": f"{kib:,.1f} KiB at {largest['connections']:,} connections",
                "met": kib <= 16.0,
            }
        )
    relay = _best(rows, ("relay",))
    if best and relay:
        share = best.delivered_per_s / relay.delivered_per_s if relay.delivered_per_s else 0.0
        out.append(
            {
                "target": "cross-network >= 1/2 of the raw relay's throughput",
                "measured": f"{share:.1%} ({best.delivered_per_s:,.0f} vs "
                f"{relay.delivered_per_s:,.0f} msg/s)",
                "met": share >= 0.5,
            }
        )
    return out


# ---------------------------------------------------------------- text


HEAD = (
    "path",
    "load",
    "offered",
    "sent/s",
    "deliv/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "lost",
    "dup",
    "ooo",
    "skip",
    "gw µs/msg",
    "redis µs/msg",
    "lg CPU%",
)


def _cells(row: MessageRow) -> list[str]:
    offered = {
        "fixed": f"{row.offered:,.0f}/s",
        "closed": f"{row.offered:,.0f} in flight",
        "burst": f"{row.offered:,.0f} at once",
    }.get(row.load, f"{row.offered:,.0f}")
    return [
        row.path,
        row.load,
        offered,
        f"{row.sent_per_s:,.0f}",
        f"{row.delivered_per_s:,.0f}",
        f"{row.p50_ms:,.2f}",
        f"{row.p95_ms:,.2f}",
        f"{row.p99_ms:,.2f}",
        f"{row.max_ms:,.1f}",
        str(row.lost),
        str(row.duplicates),
        str(row.out_of_order),
        str(row.skipped),
        f"{row.gateway_cpu_us:,.0f}",
        f"{row.redis_cpu_us:,.0f}",
        f"{row.loadgen_cpu_pct:,.0f}",
    ]


def text_table(results: Results) -> str:
    body = [_cells(r) for r in results.rows]
    widths = [
        max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(HEAD)
    ]
    lines = ["  ".join(h.rjust(w) for h, w in zip(HEAD, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) for cells in body]
    lines.append("")
    lines += _figure_lines(results)
    if results.redis_bench:
        lines.append(
            "redis-benchmark (requests/s): "
            + ", ".join(
                f"{r['test']}@{r['clients']}c {r['requests_per_s']:,.0f}"
                for r in results.redis_bench
            )
        )
    for target in results.targets:
        verdict = {True: "MET", False: "NOT MET", None: "n/a"}[target["met"]]
        lines.append(f"target {target['target']}: {target['measured']} -> {verdict}")
    lines += [f"note: {n}" for n in results.notes]
    return "\n".join(lines)


def _figure_lines(results: Results) -> list[str]:
    lines = []
    for login in results.figures.get("logins", []):
        lines.append(
            f"logins {login['network']}: {login['ok']:,} ok, {login['failed']} failed, "
            f"{login['per_s']:,.0f}/s at {login['concurrency']} concurrent, "
            f"gateway {login['gateway_cpu_ms']:,.2f} ms CPU per login"
        )
    for memory in results.figures.get("memory", []):
        lines.append(
            f"memory: {memory['connections']:,} idle OSCAR connections: gateway RSS "
            f"{memory['rss_before_bytes'] / 2**20:,.1f} -> {memory['rss_after_bytes'] / 2**20:,.1f} MiB, "
            f"{memory['rss_per_connection_bytes'] / 1024:,.1f} KiB per connection; gateway CPU "
            f"while they idle: {memory['idle_cpu_pct']:,.1f} % of a core"
        )
    for path, calls in results.figures.get("redis_calls_per_message", {}).items():
        total = sum(calls.values())
        shown = ", ".join(f"{name} {count:g}" for name, count in calls.items())
        lines.append(f"redis commands per message, {path} closed loop: {total:.1f} ({shown})")
    shutdown = results.figures.get("shutdown")
    if shutdown:
        lines.append(
            f"graceful gateway stop (SIGTERM) with {shutdown['oscar_online']:,} OSCAR and "
            f"{shutdown['msn_online']} MSN users online: {shutdown['seconds']:,.1f} s"
        )
    dataset = results.figures.get("dataset")
    if dataset:
        lines.append(
            f"data set: {dataset['accounts']:,} accounts, "
            + ("from cache" if dataset["cached"] else f"built in {dataset['build_seconds']:,.0f} s")
        )
    return lines


# ---------------------------------------------------------------- Markdown


def markdown(results: Results, plot: str | None) -> str:
    m = results.machine
    out = [
        f"## {m['date']} — {results.mode} mode",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, kernel {m['kernel']}, "
        f"Python {m['python']}, commit {m['commit']}.",
        "",
    ]
    if plot:
        out += [f"![latency against offered load]({plot})", ""]
    out += ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join(_cells(r)) + " |" for r in results.rows]
    out.append("")
    out += [f"- {line}" for line in _figure_lines(results)]
    if results.redis_bench:
        out += [
            "",
            "| redis-benchmark | clients | requests/s | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {r['test']} | {r['clients']} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.3f} | "
            f"{r['p99_ms']:.3f} |"
            for r in results.redis_bench
        ]
    out += ["", "| target | measured | met |", "|---|---|---|"]
    for target in results.targets:
        verdict = {True: "yes", False: "**no**", None: "n/a"}[target["met"]]
        out.append(f"| {target['target']} | {target['measured']} | {verdict} |")
    if results.notes:
        out.append("")
        out += [f"- {note}" for note in results.notes]
    errors = {k: v for r in results.rows for k, v in r.errors.items()}
    if errors:
        out += [
            "",
            "Client-side events seen: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())),
        ]
    return "\n".join(out) + "\n"


def append_markdown(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text(
            "# Benchmarks\n\nRun with `./dev bench` (full) or `./dev bench --short`.\n\n"
        )
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)


# ---------------------------------------------------------------- plot


def plot(results: Results, target: Path) -> bool:
    """Latency p50 (solid) and p99 (dashed) against offered load, one colour per path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    paths = sorted({r.path for r in results.rows})
    colours = plt.get_cmap("tab10")
    for i, path in enumerate(paths):
        colour = colours(i % 10)
        fixed = sorted(
            (r.offered, r.p50_ms, r.p99_ms)
            for r in results.rows
            if r.path == path and r.delivered and r.load == "fixed"
        )
        if fixed:
            xs = [p[0] for p in fixed]
            axes.plot(xs, [max(p[1], 1e-3) for p in fixed], "o-", color=colour, label=f"{path} p50")
            axes.plot(
                xs, [max(p[2], 1e-3) for p in fixed], "s--", color=colour, label=f"{path} p99"
            )
        for r in results.rows:
            if r.path == path and r.delivered and r.load == "closed":
                # The maximum: at the rate it delivered; p50 and p99 joined by a bar.
                axes.plot(
                    [r.delivered_per_s] * 2,
                    [max(r.p50_ms, 1e-3), max(r.p99_ms, 1e-3)],
                    "*-",
                    color=colour,
                    markersize=10,
                )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(
        "offered load, msg/s (stars: closed-loop maximum at its delivered rate, p50-p99)"
    )
    axes.set_ylabel("latency, ms (sender write -> receiver read)")
    axes.set_title(f"{results.mode} mode, {results.machine['date']}, {results.machine['commit']}")
    axes.grid(True, which="both", alpha=0.3)
    axes.axhline(5.0, color="grey", linewidth=0.8, linestyle=":")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)
    plt.close(figure)
    return True
