"""The store's baseline: ``redis-benchmark`` against the bench's own Redis.

Commands close to the gateway's hot path: GET/SET, HSET (account and contact
hashes are read with HGET/HGETALL), XADD (the inter-node delivery streams; capped here) and an
EVAL of a one-call Lua script (every delivery is one script). Two client shapes:
50 connections (what the server can do) and 1 connection without pipelining (the
round-trip rate that bounds a chain of awaited commands, which is what one message
is in the gateway). A separate database number keeps its keys out of the gateway's.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from dataclasses import dataclass

BINARY_CANDIDATES = ("/usr/bin/redis-benchmark", "redis-benchmark")
TESTS = "set,get,hset"
CUSTOM = (
    ("xadd", ["xadd", "bench:stream", "MAXLEN", "~", "10000", "*", "f", "v"]),
    ("eval", ["-r", "1000", "eval", "return redis.call('get', KEYS[1])", "1", "key:__rand_int__"]),
)


@dataclass(frozen=True)
class RedisBenchRow:
    test: str
    clients: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def find_binary() -> str | None:
    for candidate in BINARY_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _parse(text: str, clients: int) -> list[RedisBenchRow]:
    rows: list[RedisBenchRow] = []
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for record in reader:
        if not record:
            continue
        if header is None:
            header = [h.strip().lower() for h in record]
            continue
        data = dict(zip(header, record, strict=False))
        try:
            rows.append(
                RedisBenchRow(
                    test=data["test"].split(" ")[0].split(":")[0],
                    clients=clients,
                    requests_per_s=float(data["rps"]),
                    p50_ms=float(data.get("p50_latency_ms", "nan")),
                    p99_ms=float(data.get("p99_latency_ms", "nan")),
                )
            )
        except (KeyError, ValueError):
            continue
    return rows


def run(port: int, requests: int, binary: str | None = None) -> list[RedisBenchRow]:
    """Every test at 50 clients and at 1 client; [] when no redis-benchmark exists."""
    binary = binary or find_binary()
    if binary is None:
        return []
    rows: list[RedisBenchRow] = []
    for clients, count in ((50, requests), (1, max(1000, requests // 5))):
        base = [binary, "-h", "127.0.0.1", "-p", str(port), "-n", str(count)]
        base += ["-c", str(clients), "-P", "1", "--dbnum", "9", "--csv"]
        for name, extra in (("", ["-t", TESTS]), *CUSTOM):
            done = subprocess.run(
                base + extra, capture_output=True, text=True, timeout=300, check=False
            )
            parsed = _parse(done.stdout, clients)
            if name:
                parsed = [
                    RedisBenchRow(name, r.clients, r.requests_per_s, r.p50_ms, r.p99_ms)
                    for r in parsed
                ]
            rows += parsed
    return rows
