"""The benchmark suite: one command, every measurement, one record.

Theory of operation. ``run_suite(plan)``:
1. describes the machine; loads (or builds, then caches) the data set;
2. starts a Redis from it (AOF on, as in production) and one gateway process
   (``python -m gateway --config FILE run`` through tests/support/node.py), OSCAR and
   MSN on ephemeral ports; starts the load generator process;
3. baselines: ``redis-benchmark`` against that Redis, then the raw Twisted relay
   (bench/relay.py, its own process) driven like the gateway;
4. logs in the idle OSCAR users (logins/s, RSS per idle connection at each memory
   point), then the MSN users;
5. per path: set up the pairs, one warm-up message per pair (excluded), fixed-rate
   steps, and for paths whose senders are not rate-limited a closed-loop step at
   maximum rate; CPU of the gateway, Redis and the load generator around each step;
6. optionally profiles the gateway with py-spy under maximum cross-network load;
7. stops everything, prints the table, and (unless told not to) appends the results
   to docs/BENCHMARKS.md with the plot and a JSON copy under docs/bench/.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis

from bench import dataset as D
from bench import machine, procstat, profile, redisbench, report
from bench.loadgen import worker_main
from gateway.embedded import EmbeddedRedis

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# Every load-generator connection comes from 127.0.0.1: lift the per-source cap
# (docs/adr/0017-rates-and-admission.md). MSN's closed-loop step measures the gateway's
# capacity, so its per-switchboard message rate is lifted too (OSCAR senders are paced).
UNCAPPED = 1_000_000
OSCAR = {"factory": "adapters.oscar.adapter:OscarAdapter", "max_connections_per_source": UNCAPPED}
# Plain HTTP for the Passport step, as in the runs before HTTPS became the default
# (comparable figures; the TLS handshake is not the gateway's hot path).
MSN = {
    "factory": "adapters.msn.adapter:MsnAdapter",
    "switchboard_port": 0,
    "http_port": 0,
    "http_tls": False,
    "max_connections_per_source": UNCAPPED,
    "message_rate": float(UNCAPPED),
    "message_burst": float(UNCAPPED),
    "command_rate": float(UNCAPPED),
    "command_burst": float(UNCAPPED),
}
WARMUP_RATE = 200.0
"""Warm-up messages (one per pair, excluded) go out at this pace, well below saturation."""
ALERT_MARGIN = 1.1
"""OSCAR senders are paced at 1.1x the advertised alert gap: never warned or limited."""


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Plan:
    name: str
    oscar_users: int  # accounts; all of them log in (idle pool, then senders/receivers)
    memory_points: tuple[int, ...]  # RSS per connection measured at these counts
    msn_pairs: int  # pairs on each MSN-origin path (and on the relay)
    rates: tuple[int, ...]  # fixed-rate steps, msg/s
    step_seconds: float
    closed_seconds: float
    window: int  # closed loop: messages in flight per pair
    oscar_step_seconds: float
    oscar_pairs: int  # at most this many pairs on each OSCAR-origin path
    oscar_min_rate: float  # tiny mode: a burst the rate replica still allows
    redis_requests: int
    login_concurrency: int
    profile_seconds: float
    stop_when_saturated: bool
    stall_seconds: float = 5.0
    idle_seconds: float = 3.0  # gateway CPU measured while the logged-in users idle


PLANS: dict[str, Plan] = {
    "tiny": Plan(
        name="tiny",
        oscar_users=12,
        memory_points=(12,),
        msn_pairs=2,
        rates=(150,),
        step_seconds=1.0,
        closed_seconds=1.0,
        window=4,
        oscar_step_seconds=1.5,
        oscar_pairs=4,
        oscar_min_rate=4.0,
        redis_requests=2000,
        login_concurrency=8,
        profile_seconds=2.0,
        stop_when_saturated=False,
        stall_seconds=10.0,
        idle_seconds=0.5,
    ),
    "short": Plan(
        name="short",
        oscar_users=1000,
        memory_points=(1000,),
        msn_pairs=16,
        rates=(250, 500, 1000, 2000, 5000),
        step_seconds=2.0,
        closed_seconds=3.0,
        window=8,
        oscar_step_seconds=6.0,
        oscar_pairs=500,
        oscar_min_rate=0.0,
        redis_requests=50_000,
        login_concurrency=32,
        profile_seconds=6.0,
        stop_when_saturated=True,
    ),
    "full": Plan(
        name="full",
        oscar_users=10_000,
        memory_points=(1000, 10_000),
        msn_pairs=16,
        rates=(250, 500, 1000, 2000, 5000, 10_000, 20_000),
        step_seconds=5.0,
        closed_seconds=8.0,
        window=8,
        oscar_step_seconds=12.0,
        oscar_pairs=2500,
        oscar_min_rate=0.0,
        redis_requests=200_000,
        login_concurrency=32,
        profile_seconds=12.0,
        stop_when_saturated=True,
        idle_seconds=10.0,
    ),
}


# ---------------------------------------------------------------- processes


class Loadgen:
    """The load generator process and its command pipe."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._conn: Connection = parent
        self.process = ctx.Process(target=worker_main, args=(child,), name="bench-loadgen")
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def call(self, op: str, timeout: float = 1800.0, **args: Any) -> Any:
        self._conn.send({"op": op, **args})
        if not self._conn.poll(timeout):
            raise BenchError(f"the load generator did not answer {op} within {timeout:.0f} s")
        result = self._conn.recv()
        if isinstance(result, dict) and "error" in result:
            raise BenchError(f"the load generator failed in {op}:\n{result['error']}")
        return result

    def stop(self) -> None:
        try:
            if self.process.is_alive():
                self.call("stop", timeout=60)
        except (BenchError, OSError, EOFError):
            pass
        self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


class Relay:
    def __init__(self, workdir: Path) -> None:
        port_file = workdir / "relay.port"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.relay", str(port_file)],
            cwd=str(REPO),
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "relay.log").open("wb"),
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"the relay did not start: {(workdir / 'relay.log').read_text()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Meters:
    """CPU seconds of the measured processes."""

    pids: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                out[name] = procstat.cpu_seconds(pid)
            except (OSError, ValueError):
                out[name] = 0.0
        return out


# ---------------------------------------------------------------- the run


@dataclass
class Context:
    plan: Plan
    loadgen: Loadgen
    meters: Meters
    results: report.Results
    redis_url: str = ""
    step: int = 0
    log: bool = True
    pairs: dict[str, int] = field(default_factory=dict)

    def next_step(self) -> int:
        self.step += 1
        return self.step

    def say(self, text: str) -> None:
        if self.log:
            print(f"bench: {text}", flush=True)


def _steps(
    ctx: Context, specs: list[dict[str, Any]], server: str = "gateway"
) -> list[dict[str, Any]]:
    calls_before = _redis_calls(ctx.redis_url) if server == "gateway" else {}
    before = ctx.meters.snapshot()
    started = time.perf_counter()
    results: list[dict[str, Any]] = ctx.loadgen.call("steps", specs=specs)
    wall = time.perf_counter() - started
    after = ctx.meters.snapshot()
    calls_after = _redis_calls(ctx.redis_url) if server == "gateway" else {}
    calls = {
        name: count - calls_before.get(name, 0)
        for name, count in calls_after.items()
        if count > calls_before.get(name, 0)
    }
    for result in results:
        result["wall_s"] = wall
        result["gateway_cpu_s"] = after.get(server, 0.0) - before.get(server, 0.0)
        result["redis_cpu_s"] = (
            after.get("redis", 0.0) - before.get("redis", 0.0) if server == "gateway" else 0.0
        )
        result["redis_calls"] = calls
    return results


def _redis_calls(url: str) -> dict[str, int]:
    """Commands served so far, by name (INFO commandstats)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if isinstance(value, dict)
    }


def _measure_path(
    ctx: Context, suite: str, path: str, server: str, closed: bool, oscar_rate: float | None
) -> None:
    """Warm-up, fixed steps, then (unless the senders are rate-limited) closed loop."""
    plan = ctx.plan
    warmup = {
        "path": path,
        "step": ctx.next_step(),
        "kind": "warmup",
        "rate": WARMUP_RATE,
        "stall": plan.stall_seconds,
    }
    warm = _steps(ctx, [warmup], server)[0]
    if warm["received"] < warm["sent"]:
        ctx.results.notes.append(
            f"{path}: warm-up lost {warm['sent'] - warm['received']} of {warm['sent']}"
        )
    if oscar_rate is not None:
        rates: Sequence[float] = (oscar_rate,)
        seconds = plan.oscar_step_seconds
    else:
        rates, seconds = plan.rates, plan.step_seconds
    for rate in rates:
        spec = {
            "path": path,
            "step": ctx.next_step(),
            "kind": "fixed",
            "rate": rate,
            "duration": seconds,
            "stall": plan.stall_seconds,
        }
        row = report.message_row(
            suite, path, "fixed", rate, seconds, _steps(ctx, [spec], server)[0]
        )
        ctx.results.rows.append(row)
        ctx.say(
            f"{path} fixed {rate:,.0f}/s: delivered {row.delivered_per_s:,.0f}/s, "
            f"p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms, lost {row.lost}"
        )
        if plan.stop_when_saturated and row.saturated:
            ctx.say(f"{path}: saturated at {rate:,.0f}/s, no higher fixed steps")
            break
    if closed:
        spec = {
            "path": path,
            "step": ctx.next_step(),
            "kind": "closed",
            "window": plan.window,
            "duration": plan.closed_seconds,
            "stall": plan.stall_seconds,
        }
        result = _steps(ctx, [spec], server)[0]
        in_flight = plan.window * ctx.pairs.get(path, 0)
        row = report.message_row(suite, path, "closed", in_flight, plan.closed_seconds, result)
        ctx.results.rows.append(row)
        if result["redis_calls"] and row.delivered:
            ctx.results.figures.setdefault("redis_calls_per_message", {})[path] = {
                name: round(count / row.delivered, 2)
                for name, count in sorted(result["redis_calls"].items(), key=lambda kv: -kv[1])
                if name != "info" and count / row.delivered >= 0.01
            }
        ctx.say(
            f"{path} max (closed loop, {in_flight} in flight): {row.delivered_per_s:,.0f} msg/s, "
            f"p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms, lost {row.lost}"
        )


def _burst(ctx: Context, path: str) -> None:
    """Every sender of ``path`` sends one message at the same moment."""
    spec = {"path": path, "step": ctx.next_step(), "kind": "burst", "stall": ctx.plan.stall_seconds}
    senders = ctx.pairs.get(path, 0)
    row = report.message_row("gateway", path, "burst", senders, 0.0, _steps(ctx, [spec])[0])
    ctx.results.rows.append(row)
    ctx.say(
        f"{path} burst ({senders} senders at once): delivered {row.delivered} of {row.sent}, "
        f"p99 {row.p99_ms:.1f} ms"
    )


def _setup(ctx: Context, name: str, kind: str, pairs: list[dict[str, Any]], port: int = 0) -> None:
    ready = ctx.loadgen.call(
        "setup_path", name=name, kind=kind, pairs=pairs, host="127.0.0.1", port=port
    )
    if ready["failed"]:
        raise BenchError(f"{name}: {ready['failed']} pairs failed to set up: {ready['errors']}")
    ctx.pairs[name] = int(ready["ready"])


def _oscar_logins(ctx: Context, node_port: int, gateway_pid: int) -> None:
    plan = ctx.plan
    done = 0
    rss_before = procstat.rss_bytes(gateway_pid)
    for point in plan.memory_points:
        users = [[D.oscar_name(i), D.PASSWORD] for i in range(done, point)]
        before = ctx.meters.snapshot()
        result = ctx.loadgen.call(
            "oscar_login",
            host="127.0.0.1",
            port=node_port,
            users=users,
            concurrency=plan.login_concurrency,
        )
        after = ctx.meters.snapshot()
        if result["failed"]:
            raise BenchError(f"{result['failed']} OSCAR logins failed: {result['errors']}")
        done = point
        ctx.results.figures.setdefault("logins", []).append(
            {
                "network": "oscar",
                "ok": result["ok"],
                "failed": result["failed"],
                "per_s": result["ok"] / result["seconds"] if result["seconds"] else 0.0,
                "concurrency": plan.login_concurrency,
                "gateway_cpu_ms": 1000.0
                * (after["gateway"] - before["gateway"])
                / max(1, result["ok"]),
            }
        )
        ctx.results.figures["icbm_alert_ms"] = result["icbm_alert"]
        time.sleep(1.0)  # let the last replies and timers settle
        rss_after = procstat.rss_bytes(gateway_pid)
        idle_from, idle_started = procstat.cpu_seconds(gateway_pid), time.perf_counter()
        time.sleep(plan.idle_seconds)
        idle_share = (procstat.cpu_seconds(gateway_pid) - idle_from) / (
            time.perf_counter() - idle_started
        )
        ctx.results.figures.setdefault("memory", []).append(
            {
                "connections": point,
                "rss_before_bytes": rss_before,
                "rss_after_bytes": rss_after,
                "rss_per_connection_bytes": (rss_after - rss_before) / max(1, point),
                "idle_cpu_pct": round(100.0 * idle_share, 1),
            }
        )
        ctx.say(
            f"{point:,} OSCAR users online: {ctx.results.figures['logins'][-1]['per_s']:,.0f} "
            f"logins/s, RSS {rss_after / 2**20:,.1f} MiB "
            f"({(rss_after - rss_before) / max(1, point) / 1024:,.1f} KiB per connection)"
        )


def _msn_logins(ctx: Context, ns_port: int, http_port: int) -> None:
    plan = ctx.plan
    users = [[D.msn_email(i), D.PASSWORD] for i in range(2 * plan.msn_pairs)]
    before = ctx.meters.snapshot()
    result = ctx.loadgen.call(
        "msn_login",
        host="127.0.0.1",
        ns_port=ns_port,
        http_port=http_port,
        users=users,
        concurrency=plan.login_concurrency,
    )
    after = ctx.meters.snapshot()
    if result["failed"]:
        raise BenchError(f"{result['failed']} MSN logins failed: {result['errors']}")
    ctx.results.figures.setdefault("logins", []).append(
        {
            "network": "msn",
            "ok": result["ok"],
            "failed": 0,
            "per_s": result["ok"] / result["seconds"] if result["seconds"] else 0.0,
            "concurrency": plan.login_concurrency,
            "gateway_cpu_ms": 1000.0
            * (after["gateway"] - before["gateway"])
            / max(1, result["ok"]),
        }
    )


def _listener_port(node: Any, network: str, words: str) -> int:
    for listener in node.listeners(network):
        if words in str(listener.get("description", "")):
            return int(listener["port"])
    raise BenchError(f"no {network} listener described with {words!r}: {node.listeners(network)}")


def run_suite(
    plan: Plan,
    *,
    cache: Path = D.DEFAULT_CACHE,
    profile_label: str | None = None,
    profile_dir: Path = DOCS / "bench",
    log: bool = True,
) -> report.Results:
    from tests.support.node import GatewayNode

    results = report.Results(mode=plan.name, machine=machine.describe())
    spec = D.DatasetSpec(plan.oscar_users, plan.msn_pairs)
    data = D.ensure(spec, cache, log)
    results.figures["dataset"] = {
        "accounts": spec.oscar_users + spec.msn_users,
        "cached": data.cached,
        "build_seconds": round(data.build_seconds, 1),
    }
    workdir = Path(tempfile.mkdtemp(prefix="imgw-bench-"))
    server: EmbeddedRedis | None = None
    node: Any = None
    loadgen: Loadgen | None = None
    try:
        server = D.start_redis(data, workdir / "redis")
        probe = redis.Redis.from_url(server.url)
        redis_pid = int(probe.info("server")["process_id"])
        probe.close()
        node = GatewayNode(
            workdir,
            server.url,
            ["oscar", "msn"],
            node_id="bench",
            adapter_settings={"oscar": dict(OSCAR), "msn": dict(MSN)},
            heartbeat_seconds=5.0,
            dead_after_seconds=30.0,
        )
        D.install_sealing_key(data, node.data_dir)
        node.start()
        assert node.process is not None
        gateway_pid = node.process.pid
        loadgen = Loadgen()
        meters = Meters({"gateway": gateway_pid, "redis": redis_pid, "loadgen": loadgen.pid})
        ctx = Context(plan, loadgen, meters, results, redis_url=server.url, log=log)
        ctx.say(f"gateway pid {gateway_pid}, redis pid {redis_pid}, loadgen pid {loadgen.pid}")

        binary = redisbench.find_binary()
        if binary is None:
            results.notes.append("redis-benchmark is not installed here: no store baseline")
        else:
            ctx.say("redis-benchmark...")
            results.redis_bench = [
                asdict(r) for r in redisbench.run(server.port, plan.redis_requests, binary)
            ]

        ctx.say("relay baseline...")
        relay = Relay(workdir)
        try:
            meters.pids["relay"] = relay.process.pid
            _setup(ctx, "relay", "relay", [{"pair": k} for k in range(plan.msn_pairs)], relay.port)
            _measure_path(ctx, "relay", "relay", "relay", closed=True, oscar_rate=None)
        finally:
            relay.stop()
            meters.pids.pop("relay", None)

        oscar_port = node.port("oscar")
        ns_port = _listener_port(node, "msn", "notification")
        http_port = _listener_port(node, "msn", "http")
        ctx.say("OSCAR logins and memory...")
        _oscar_logins(ctx, oscar_port, gateway_pid)
        ctx.say("MSN logins...")
        _msn_logins(ctx, ns_port, http_port)

        p = plan.msn_pairs
        _setup(
            ctx,
            "msn>oscar",
            "msn",
            [
                {
                    "pair": 1000 + k,
                    "sender": D.msn_email(k),
                    "target": data.msn_alias_of_oscar[D.oscar_name(k)],
                }
                for k in range(p)
            ],
        )
        _setup(
            ctx,
            "msn>msn",
            "msn",
            [
                {"pair": 2000 + k, "sender": D.msn_email(k), "target": D.msn_email(p + k)}
                for k in range(p)
            ],
        )
        pool = [D.oscar_name(i) for i in range(p, plan.oscar_users)]
        count = min(plan.oscar_pairs, len(pool) // 2)
        _setup(
            ctx,
            "oscar>oscar",
            "oscar",
            [
                {"pair": 100_000 + k, "sender": pool[2 * k], "target": pool[2 * k + 1]}
                for k in range(count)
            ],
        )
        _setup(
            ctx,
            "oscar>msn",
            "oscar",
            [
                {
                    "pair": 200_000 + k,
                    "sender": pool[2 * k + 1],
                    "target": data.oscar_alias_of_msn[D.msn_email(p + k % p)],
                }
                for k in range(count)
            ],
        )
        alert = results.figures.get("icbm_alert_ms") or 0
        oscar_rate = count * 1000.0 / (alert * ALERT_MARGIN) if alert else float(plan.rates[0])
        oscar_rate = round(max(oscar_rate, plan.oscar_min_rate), 1)
        if alert:
            results.notes.append(
                f"OSCAR senders keep to the server's advertised ICBM rate class (alert at an "
                f"average gap of {alert} ms): {count} senders offer at most {oscar_rate:,.1f} msg/s "
                "on each OSCAR-origin path, so those paths get one fixed step and no closed loop"
            )
        for path in ("msn>oscar", "msn>msn"):
            _measure_path(ctx, "gateway", path, "gateway", closed=True, oscar_rate=None)
        for path in ("oscar>oscar", "oscar>msn"):
            _measure_path(ctx, "gateway", path, "gateway", closed=False, oscar_rate=oscar_rate)
        _burst(ctx, "oscar>oscar")

        if profile_label:
            _profile(ctx, gateway_pid, profile_label, profile_dir, cache / "profiles", oscar_rate)
    finally:
        # The gateway goes first, gracefully (SIGTERM) with its users still online, as in
        # a deployment; then the load generator.
        if node is not None:
            online = sum(m["connections"] for m in results.figures.get("memory", [])[-1:])
            stopping = time.perf_counter()
            try:
                node.stop(timeout=300)
                results.figures["shutdown"] = {
                    "seconds": round(time.perf_counter() - stopping, 1),
                    "oscar_online": online,
                    "msn_online": 2 * plan.msn_pairs,
                }
            except Exception as exc:  # report, keep tearing down
                results.notes.append(f"gateway stop: {exc}"[:500])
        if loadgen is not None:
            loadgen.stop()
        if node is not None:
            log_text = node.log() if node.log_path.exists() else ""
            running, _, stopping_log = log_text.partition("Received SIGTERM")
            pool_errors = (
                running.count("MaxConnectionsError"),
                stopping_log.count("MaxConnectionsError"),
            )
            if any(pool_errors):
                results.notes.append(
                    f"redis-py refused commands with MaxConnectionsError ('Too many connections': "
                    f"its pool holds 100 connections and raises instead of waiting) "
                    f"{pool_errors[0]} times while running and {pool_errors[1]} times during the "
                    "graceful stop (log lines, about 2 per failed call)"
                )
            tracebacks = log_text.count("Traceback")
            if tracebacks:
                kept = cache / "last-gateway.log"
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_text(log_text)
                results.notes.append(
                    f"the gateway log holds {tracebacks} tracebacks (kept: {kept})"
                )
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    paused = [r for r in results.rows if r.loadgen_gc_max_ms > 10.0]
    if paused:
        worst = max(paused, key=lambda r: r.loadgen_gc_max_ms)
        results.notes.append(
            f"the load generator's own GC paused it up to {worst.loadgen_gc_max_ms:,.0f} ms "
            f"({worst.path} {worst.load}): latencies of such steps include it"
        )
    results.targets = report.evaluate_targets(results)
    return results


def _profile(
    ctx: Context, gateway_pid: int, label: str, directory: Path, raw_dir: Path, oscar_rate: float
) -> None:
    plan = ctx.plan
    directory.mkdir(parents=True, exist_ok=True)
    # The collapsed stacks (for flame graphs) are large: kept beside the data set cache.
    raw_dir.mkdir(parents=True, exist_ok=True)
    raw = raw_dir / f"profile-{label}.folded"
    seconds = plan.profile_seconds
    recorder = profile.start(gateway_pid, raw, seconds)
    if recorder is None:
        ctx.results.notes.append("py-spy is not installed: no profile")
        return
    ctx.say(f"profiling the gateway for {seconds:.0f} s under maximum cross-network load...")
    time.sleep(0.5)  # py-spy attaches
    specs = [
        {
            "path": "msn>oscar",
            "step": ctx.next_step(),
            "kind": "closed",
            "window": plan.window,
            "duration": seconds + 1.0,
        },
        {
            "path": "oscar>msn",
            "step": ctx.next_step(),
            "kind": "fixed",
            "rate": oscar_rate,
            "duration": seconds + 1.0,
        },
    ]
    results = _steps(ctx, specs)
    _, err = recorder.communicate(timeout=120)
    if recorder.returncode != 0 or not raw.exists():
        ctx.results.notes.append(f"py-spy failed: {err.decode(errors='replace')[-300:]}")
        return
    closed = report.message_row("gateway", "msn>oscar", "closed", 0, seconds, results[0])
    title = (
        f"py-spy profile of the gateway process ({ctx.results.machine['date']}, commit "
        f"{ctx.results.machine['commit']}, {plan.name} mode): msn>oscar closed loop "
        f"({plan.window} in flight per pair, {closed.delivered_per_s:,.0f} msg/s delivered) with "
        f"oscar>msn at {oscar_rate:,.0f} msg/s, {seconds:.0f} s at 200 Hz"
    )
    summary = directory / f"profile-{label}.txt"
    summary.write_text(profile.summarise(raw, title))
    shown = summary.relative_to(REPO) if summary.is_relative_to(REPO) else summary
    stacks = raw.relative_to(REPO) if raw.is_relative_to(REPO) else raw
    ctx.results.figures["profile"] = str(shown)
    ctx.results.notes.append(f"profile: {shown} (collapsed stacks: {stacks})")
    ctx.say(f"profile written to {summary}")


# ---------------------------------------------------------------- recording


def record(results: report.Results, docs: Path = DOCS) -> tuple[Path, Path | None]:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M")
    images = docs / "bench"
    images.mkdir(parents=True, exist_ok=True)
    png = images / f"latency-{stamp}-{results.mode}.png"
    drawn = report.plot(results, png)
    (images / f"results-{stamp}-{results.mode}.json").write_text(results.to_json())
    markdown = report.markdown(results, f"bench/{png.name}" if drawn else None)
    target = docs / "BENCHMARKS.md"
    report.append_markdown(target, markdown)
    return target, png if drawn else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--short", action="store_true", help="the short suite (< 2 min)")
    group.add_argument("--tiny", action="store_true", help="a smoke-sized run (tests)")
    parser.add_argument("--no-record", action="store_true", help="print only; write no docs")
    parser.add_argument(
        "--profile", metavar="LABEL", help="py-spy profile -> docs/bench/profile-LABEL.txt"
    )
    parser.add_argument("--cache", type=Path, default=D.DEFAULT_CACHE, help="data set cache folder")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    plan = PLANS["short" if args.short else "tiny" if args.tiny else "full"]
    if args.profile and (DOCS / "bench" / f"profile-{args.profile}.txt").exists():
        print(f"bench: docs/bench/profile-{args.profile}.txt exists; choose another label")
        return 2
    started = time.perf_counter()
    try:
        results = run_suite(plan, cache=args.cache, profile_label=args.profile)
    except BenchError as exc:
        print(f"bench: failed: {exc}", file=sys.stderr)
        return 1
    print()
    print(report.text_table(results))
    if args.json:
        args.json.write_text(results.to_json())
    if not args.no_record:
        where, png = record(results)
        print(f"\nrecorded in {where}" + (f", plot {png}" if png else ""))
    print(f"bench: {plan.name} mode took {time.perf_counter() - started:,.0f} s")
    return 0
