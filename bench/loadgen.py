"""The load generator: a separate process driven by the suite.

Theory of operation. The suite starts the worker with ``multiprocessing`` (spawn) and
talks to it over a pipe: one command at a time, one result back (a dict of plain
values). The worker runs one asyncio loop; the pipe is one more readable file on it.
Commands:

- ``oscar_login`` / ``msn_login``: log users in, ``concurrency`` at a time; the
  connections stay open (idle users for the memory figure, then senders and
  receivers). Client keepalives go out every 30 s so nobody idles out.
- ``setup_path``: a path is a list of pairs (sender, what it writes to). OSCAR
  senders write ICBMs to a screen name (native or alias); MSN senders open a
  switchboard and CAL the target first; relay senders get a connection pair.
- ``steps``: run step specs at the same time, each on its own path and step id:
  ``fixed`` sends open loop at ``rate`` msg/s for ``duration`` s, round robin over
  the pairs; ``closed`` keeps ``window`` messages in flight per pair for
  ``duration`` s; ``warmup`` sends one per pair at ``rate``, ``burst`` one per pair
  all at once. Each then drains: waits until
  everything sent has arrived, or nothing arrived for ``stall`` seconds.
  A sender whose client-side rate replica (OSCAR's advertised class for ICBM) would
  fall below the alert level is skipped, and the skips are counted: the load the
  step actually offered is what was sent.
- ``stop``.

Latency is taken from the sender's ``perf_counter_ns`` in the body to the time the
receiver read the bytes; both ends of every pair live in this process, so one ledger
sees both.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench.clients import (
    ClientError,
    MsnConnection,
    MsnUser,
    OscarUser,
    RateReplica,
    RelayConnection,
    relay_pair,
    text_payload,
)
from bench.ledger import Ledger, StepTally

KEEPALIVE_SECONDS = 60.0
TICK = 0.001


@dataclass
class PairSender:
    pair: int
    write: Callable[[str], None]
    replica: RateReplica | None = None

    def allowed(self, now: float) -> bool:
        return self.replica is None or self.replica.allows(now)


class GcPauses:
    """The longest garbage-collector pause of this process since ``reset`` (a pause
    here delays the receivers' time stamps and would pass for server latency)."""

    def __init__(self) -> None:
        self._started = 0
        self.longest_ns = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        elif self._started:
            self.longest_ns = max(self.longest_ns, time.perf_counter_ns() - self._started)

    def reset(self) -> None:
        self.longest_ns = 0


class Worker:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.ledger = Ledger()
        self.oscar: dict[str, OscarUser] = {}
        self.msn: dict[str, MsnUser] = {}
        self.paths: dict[str, list[PairSender]] = {}
        self.relay: list[RelayConnection] = []
        self._hooks: dict[int, Callable[[int], None]] = {}
        self._stopped: asyncio.Future[None] | None = None
        self._busy: asyncio.Task[None] | None = None
        self.gc = GcPauses()

    # ---- process plumbing

    async def run(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        self.ledger.on_receive = self._on_receive
        loop.add_reader(self.conn.fileno(), self._readable)
        keepalive = asyncio.ensure_future(self._keepalive())
        try:
            await self._stopped
        finally:
            keepalive.cancel()
            loop.remove_reader(self.conn.fileno())
            self._close_all()

    def _readable(self) -> None:
        try:
            command = self.conn.recv()
        except EOFError:
            if self._stopped is not None and not self._stopped.done():
                self._stopped.set_result(None)
            return
        self._busy = asyncio.ensure_future(self._handle(command))

    async def _handle(self, command: dict[str, Any]) -> None:
        op = command.pop("op")
        try:
            result = await getattr(self, f"op_{op}")(**command)
        except Exception:
            result = {"error": traceback.format_exc()}
        self.conn.send(result)
        if op == "stop" and self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    async def _keepalive(self) -> None:
        """Each user sends a keepalive every KEEPALIVE_SECONDS, spread evenly over the
        interval (a slice per second), as independent clients would: 10,000 keepalives
        in one instant would be a burst no real population produces."""
        turn = 0
        while True:
            await asyncio.sleep(1.0)
            users: list[OscarUser | MsnUser] = [*self.oscar.values(), *self.msn.values()]
            if not users:
                continue
            share = -(-len(users) // int(KEEPALIVE_SECONDS))
            for user in users[turn : turn + share]:
                with contextlib.suppress(ClientError):
                    user.keepalive()
            turn = turn + share if turn + share < len(users) else 0

    def _close_all(self) -> None:
        for user in self.oscar.values():
            user.close()
        for msn in self.msn.values():
            msn.close()
        for conn in self.relay:
            conn.close()

    # ---- logins

    async def _logins(
        self, items: list[Any], login: Callable[[Any], Any], concurrency: int
    ) -> dict[str, Any]:
        gate = asyncio.Semaphore(max(1, concurrency))
        errors: list[str] = []
        done = 0

        async def one(item: Any) -> None:
            nonlocal done
            async with gate:
                try:
                    await asyncio.wait_for(login(item), 120)
                    done += 1
                except (OSError, ClientError, TimeoutError) as exc:
                    errors.append(f"{item[0]}: {type(exc).__name__}: {exc}"[:300])

        started = time.perf_counter()
        cpu = _cpu()
        await asyncio.gather(*(one(item) for item in items))
        return {
            "ok": done,
            "failed": len(errors),
            "errors": errors[:5],
            "seconds": time.perf_counter() - started,
            "cpu_s": _cpu() - cpu,
        }

    async def op_oscar_login(
        self, host: str, port: int, users: list[list[str]], concurrency: int
    ) -> dict[str, Any]:
        async def login(item: list[str]) -> None:
            name, password = item
            user = OscarUser(name, self.ledger)
            await user.login(host, port, password)
            self.oscar[name] = user

        result = await self._logins(users, login, concurrency)
        replica = next((u.replica for u in self.oscar.values() if u.replica), None)
        result["icbm_alert"] = replica.alert if replica else None
        result["icbm_window"] = replica.window if replica else None
        return result

    async def op_msn_login(
        self, host: str, ns_port: int, http_port: int, users: list[list[str]], concurrency: int
    ) -> dict[str, Any]:
        async def login(item: list[str]) -> None:
            email, password = item
            user = MsnUser(email, self.ledger)
            await user.login(host, ns_port, http_port, password)
            self.msn[email] = user

        return await self._logins(users, login, concurrency)

    # ---- paths

    async def op_setup_path(
        self, name: str, kind: str, pairs: list[dict[str, Any]], host: str, port: int = 0
    ) -> dict[str, Any]:
        senders: list[PairSender] = []
        errors: list[str] = []

        async def msn_sender(spec: dict[str, Any]) -> None:
            user = self.msn[spec["sender"]]
            try:
                sb = await user.open_switchboard(host, spec["target"])
            except (OSError, ClientError) as exc:
                errors.append(f"{spec['sender']} -> {spec['target']}: {exc}"[:300])
                return
            senders.append(PairSender(spec["pair"], _msn_writer(sb)))

        if kind == "oscar":
            for spec in pairs:
                user = self.oscar[spec["sender"]]
                target = spec["target"]
                senders.append(PairSender(spec["pair"], _oscar_writer(user, target), user.replica))
        elif kind == "msn":
            await asyncio.gather(*(msn_sender(spec) for spec in pairs))
        elif kind == "relay":
            for spec in pairs:
                sender, receiver = await relay_pair(host, port, spec["pair"], self.ledger)
                self.relay += [sender, receiver]
                senders.append(PairSender(spec["pair"], _relay_writer(sender)))
        else:
            raise ValueError(f"unknown path kind {kind}")
        senders.sort(key=lambda s: s.pair)
        self.paths[name] = senders
        return {"ready": len(senders), "failed": len(errors), "errors": errors[:5]}

    # ---- steps

    def _on_receive(self, step: int, pair: int) -> None:
        hook = self._hooks.get(step)
        if hook is not None:
            hook(pair)

    def _send(self, sender: PairSender, step: int) -> bool:
        now_ns = time.perf_counter_ns()
        body = self.ledger.next_body(step, sender.pair, now_ns)
        try:
            sender.write(body)
        except ClientError:
            self.ledger.unsend(step)
            self.ledger.error("write-failed")
            return False
        if sender.replica is not None:
            sender.replica.record(time.monotonic())
        return True

    async def op_steps(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        errors_before = dict(self.ledger.errors)
        foreign_before = self.ledger.foreign
        self.gc.reset()
        cpu = _cpu()
        results = await asyncio.gather(*(self._step(**spec) for spec in specs))
        cpu_s = _cpu() - cpu
        errors = {
            k: v - errors_before.get(k, 0)
            for k, v in self.ledger.errors.items()
            if v != errors_before.get(k, 0)
        }
        for result in results:
            result["cpu_s"] = cpu_s
            result["errors"] = errors
            result["foreign"] = self.ledger.foreign - foreign_before
            result["gc_max_ms"] = self.gc.longest_ns / 1e6
        return list(results)

    async def _step(
        self,
        path: str,
        step: int,
        kind: str,
        rate: float = 0.0,
        duration: float = 0.0,
        window: int = 1,
        stall: float = 5.0,
    ) -> dict[str, Any]:
        senders = self.paths.get(path, [])
        tally = self.ledger.tally(step)
        skipped = 0
        if not senders:
            pass
        elif kind in ("warmup", "burst"):
            skipped = await self._one_each(senders, step, rate if kind == "warmup" else 0.0)
        elif kind == "fixed":
            skipped = await self._fixed(senders, step, rate, duration)
        elif kind == "closed":
            skipped = await self._closed(senders, step, window, duration)
        else:
            raise ValueError(f"unknown step kind {kind}")
        sent_done = time.perf_counter()
        await self._drain(tally, stall)
        result = _summary(tally)
        result.update(
            path=path,
            step=step,
            kind=kind,
            skipped=skipped,
            drain_s=time.perf_counter() - sent_done,
        )
        tally.latencies_ns = type(tally.latencies_ns)("q")
        return result

    async def _one_each(self, senders: list[PairSender], step: int, rate: float) -> int:
        """One message per pair: paced at ``rate`` msg/s, or all at once when 0."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        skipped = 0
        for i, sender in enumerate(senders):
            if rate > 0:
                wait = started + i / rate - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            if sender.allowed(time.monotonic()):
                self._send(sender, step)
            else:
                skipped += 1
        return skipped

    async def _fixed(
        self, senders: list[PairSender], step: int, rate: float, duration: float
    ) -> int:
        loop = asyncio.get_running_loop()
        started = loop.time()
        scheduled = 0
        skipped = 0
        turn = 0
        count = len(senders)
        while True:
            elapsed = loop.time() - started
            if elapsed >= duration:
                break
            due = int(rate * elapsed) + 1 - scheduled
            if due > 0:
                now = time.monotonic()
                for _ in range(due):
                    for _attempt in range(count):
                        sender = senders[turn]
                        turn = (turn + 1) % count
                        if sender.allowed(now):
                            self._send(sender, step)
                            break
                    else:
                        skipped += 1
                scheduled += due
            await asyncio.sleep(TICK)
        return skipped

    async def _closed(
        self, senders: list[PairSender], step: int, window: int, duration: float
    ) -> int:
        by_pair = {s.pair: s for s in senders}
        skipped = 0

        def refill(pair: int) -> None:
            nonlocal skipped
            sender = by_pair.get(pair)
            if sender is None:
                return
            if sender.allowed(time.monotonic()):
                self._send(sender, step)
            else:
                skipped += 1

        self._hooks[step] = refill
        try:
            now = time.monotonic()
            for sender in senders:
                for _ in range(window):
                    if sender.allowed(now):
                        self._send(sender, step)
            await asyncio.sleep(duration)
        finally:
            del self._hooks[step]
        return skipped

    async def _drain(self, tally: StepTally, stall: float) -> None:
        loop = asyncio.get_running_loop()
        seen = tally.received
        progress = loop.time()
        while tally.outstanding > 0:
            await asyncio.sleep(0.005)
            if tally.received != seen:
                seen, progress = tally.received, loop.time()
            elif loop.time() - progress > stall:
                return

    # ---- end

    async def op_stop(self) -> dict[str, Any]:
        return {"ok": True}

    async def op_ping(self) -> dict[str, Any]:
        return {"pid": os.getpid()}


def _oscar_writer(user: OscarUser, target: str) -> Callable[[str], None]:
    return lambda text: user.send_text(target, text)


def _msn_writer(sb: MsnConnection) -> Callable[[str], None]:
    return lambda text: _msn_send(sb, text)


def _msn_send(sb: MsnConnection, text: str) -> None:
    sb.send("MSG", "N", payload=text_payload(text))


def _relay_writer(conn: RelayConnection) -> Callable[[str], None]:
    return lambda text: conn.send_text("relay", text)


def _summary(tally: StepTally) -> dict[str, Any]:
    return {
        "sent": tally.sent,
        "received": tally.received,
        "duplicates": tally.duplicates,
        "out_of_order": tally.out_of_order,
        "latencies": tally.latencies_ns.tobytes(),
        "first_send_ns": tally.first_send_ns,
        "last_send_ns": tally.last_send_ns,
        "last_receive_ns": tally.last_receive_ns,
    }


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def worker_main(conn: Connection) -> None:
    """Entry point of a load generator process."""
    asyncio.run(Worker(conn).run())
