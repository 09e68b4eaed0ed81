"""Numbered traffic for the fault-injection suite: one stream is one sender and one
receiver of the same network, each a real client (the project's own codecs: OSCAR and
MSN from bench/clients.py, UIN the shipped terminal client in script mode) on a real
socket, each logging in again whenever its connection ends.

A sender writes ``bm <step> <pair> <seq> <sent_ns>`` bodies (bench/ledger.py) at a fixed
rate and keeps, per sequence number, what its client was told: acknowledged (OSCAR
04/0C, MSN ACK, UIN ``delivered``), refused (OSCAR 04/01, MSN NAK, UIN
``message_failed``), or nothing yet. A message whose connection ended before any answer
is "cut": its fate is unknown to the sender, which the contract allows. A message still
unanswered on a connection that stayed up is "silent": the contract forbids that.
The receiver records every sequence number it reads, with its latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.msn.codec import Command, ErrorReply
from adapters.oscar import snac as S
from adapters.oscar.codec import SnacEvent
from adapters.oscar.tlv import Tlv, find
from adapters.oscar.translate import build_fragments, fragments_text
from bench.clients import ClientError, MsnConnection, MsnUser, OscarUser, text_payload
from bench.ledger import Ledger, message_body

REPO = Path(__file__).resolve().parents[2]


_TOKEN = re.compile(r"bm (\d{1,9}) (\d{1,9}) (\d{1,12}) (\d{1,20})")


def parse_body(text: str) -> tuple[int, int, int] | None:
    """(pair, seq, sent_ns) of a numbered body (also inside the HTML an AIM recipient
    is shown), None for anything else."""
    match = _TOKEN.search(text)
    if match is None:
        return None
    return int(match.group(2)), int(match.group(3)), int(match.group(4))


@dataclass
class Book:
    """What one stream sent and what became of it."""

    name: str
    pair: int
    sent: dict[int, float] = field(default_factory=dict)  # seq -> monotonic send time
    acked: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    cut: set[int] = field(default_factory=set)
    late_failed: set[int] = field(default_factory=set)
    relogin_mark: int = -1  # len(received) when the receivers were made to log in again
    received: list[int] = field(default_factory=list)
    receipts: list[tuple[float, float]] = field(default_factory=list)  # (when, latency ms)
    logins: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    next_seq: int = 0
    pad: int = 0  # bodies padded to this many characters (a slow reader's flood)
    bystander: bool = True  # its latency counts as "other users'" (not a paused reader)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def body(self) -> tuple[int, str]:
        seq = self.next_seq
        self.next_seq += 1
        self.sent[seq] = time.monotonic()
        text = message_body(0, self.pair, seq, time.perf_counter_ns())
        return seq, text + "." * max(0, self.pad - len(text))

    def answer(self, seq: int, ok: bool) -> None:
        if seq in self.acked and not ok:
            self.late_failed.add(seq)  # acknowledged, then refused after all
            return
        if seq in self.acked or seq in self.failed:
            self.error("answered-twice")
            return
        self.cut.discard(seq)
        (self.acked if ok else self.failed).add(seq)

    def connection_ended(self, unanswered: set[int]) -> None:
        self.cut |= {s for s in unanswered if s not in self.acked and s not in self.failed}

    def receive_text(self, text: str) -> None:
        now_ns = time.perf_counter_ns()
        parsed = parse_body(text)
        if parsed is None or parsed[0] != self.pair:
            return
        _, seq, sent_ns = parsed
        self.received.append(seq)
        self.receipts.append((time.monotonic(), (now_ns - sent_ns) / 1e6))


@dataclass(frozen=True)
class Endpoint:
    """Where a client logs in: a node's listener ports."""

    host: str
    ports: dict[str, int]


class Agent:
    """One client that logs in again whenever its connection ends, until stopped."""

    RETRY = 0.5

    def __init__(self, book: Book, endpoint: Any) -> None:
        self.book = book
        self.endpoint = endpoint  # a callable giving the current Endpoint
        self.stopped = False
        self.online = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        self.close()

    async def _run(self) -> None:
        while not self.stopped:
            try:
                await asyncio.wait_for(self.connect(self.endpoint()), 20)
            except (OSError, ClientError, TimeoutError, ValueError, IndexError) as exc:
                self.book.error(f"login: {type(exc).__name__} {str(exc)[:80]}")
                self.close()
                await asyncio.sleep(self.RETRY)
                continue
            self.book.logins += 1
            self.online.set()
            try:
                await self.serve()
            finally:
                self.online.clear()
                self.close()
            await asyncio.sleep(self.RETRY)

    async def connect(self, where: Endpoint) -> None:
        raise NotImplementedError

    async def serve(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Sender(Agent):
    def __init__(self, book: Book, endpoint: Any, target: str, rate: float) -> None:
        super().__init__(book, endpoint)
        self.target = target
        self.rate = rate
        self.sending = False
        self.unanswered: set[int] = set()

    async def serve(self) -> None:
        next_at = time.monotonic()
        try:
            while self.alive():
                if self.sending and self.ready():
                    seq, body = self.book.body()
                    self.unanswered.add(seq)
                    try:
                        self.write(seq, body)
                    except (ClientError, OSError):
                        break
                next_at += 1.0 / self.rate  # read each time: a fault may change it
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if next_at < time.monotonic() - 1.0:
                    next_at = time.monotonic()  # do not catch up a stall in a burst
        finally:
            self.book.connection_ended(self.unanswered)
            self.unanswered = set()

    def answered(self, seq: int, ok: bool) -> None:
        self.unanswered.discard(seq)
        self.book.answer(seq, ok)

    def alive(self) -> bool:
        raise NotImplementedError

    def ready(self) -> bool:
        return True

    def write(self, seq: int, body: str) -> None:
        raise NotImplementedError


class Receiver(Agent):
    paused = False

    async def serve(self) -> None:
        while self.alive():
            await asyncio.sleep(0.1)

    def alive(self) -> bool:
        raise NotImplementedError

    def pause(self, paused: bool) -> None:
        """Stop (or resume) reading the socket: a slow reader."""
        self.paused = paused


# ---------------------------------------------------------------- OSCAR


class _OscarClient(OscarUser):
    def __init__(self, name: str, on_event: Any) -> None:
        super().__init__(name, Ledger())
        self._hook = on_event

    def _on_event(self, event: object, now_ns: int) -> None:
        self._hook(event)


class OscarSender(Sender):
    password = ""

    def __init__(self, book: Book, endpoint: Any, name: str, target: str, rate: float) -> None:
        super().__init__(book, endpoint, target, rate)
        self.name = name
        self.user: _OscarClient | None = None
        self.by_reqid: dict[int, int] = {}

    async def connect(self, where: Endpoint) -> None:
        self.user = _OscarClient(self.name, self._event)
        self.by_reqid = {}
        await self.user.login(where.host, where.ports["oscar"], self.password)

    def _event(self, event: object) -> None:
        if not isinstance(event, SnacEvent):
            return
        body = event.snac.body
        if isinstance(body, S.IcbmHostAck):
            seq = struct.unpack(">Q", body.cookie)[0]
            self.answered(int(seq), True)
        elif isinstance(body, S.SnacError) and body.family == S.ICBM:
            seq2 = self.by_reqid.pop(event.snac.request_id, None)
            if seq2 is not None:
                self.answered(seq2, False)
            else:
                self.book.error(f"oscar-error-{body.code}")

    def alive(self) -> bool:
        return self.user is not None and self.user.online

    def ready(self) -> bool:
        user = self.user
        if user is None or user.replica is None:
            return True
        now = time.monotonic()
        if not user.replica.allows(now):
            return False
        user.replica.record(now)
        return True

    def write(self, seq: int, body: str) -> None:
        assert self.user is not None and self.user.bos is not None
        tlvs = (Tlv(2, build_fragments(body)), Tlv(3))
        reqid = self.user.bos.snac(S.IcbmToHost(struct.pack(">Q", seq), 1, self.target, tlvs))
        self.by_reqid[reqid] = seq
        if len(self.by_reqid) > 10_000:
            self.by_reqid.pop(next(iter(self.by_reqid)))

    def close(self) -> None:
        if self.user is not None:
            self.user.close()


class OscarReceiver(Receiver):
    password = ""

    def __init__(self, book: Book, endpoint: Any, name: str) -> None:
        super().__init__(book, endpoint)
        self.name = name
        self.user: _OscarClient | None = None

    async def connect(self, where: Endpoint) -> None:
        self.user = _OscarClient(self.name, self._event)
        await self.user.login(where.host, where.ports["oscar"], self.password)

    def _event(self, event: object) -> None:
        if isinstance(event, SnacEvent) and isinstance(event.snac.body, S.IcbmToClient):
            data = find(event.snac.body.tlvs, 2)
            if data is not None:
                self.book.receive_text(fragments_text(data))

    def alive(self) -> bool:
        return self.user is not None and self.user.online

    def pause(self, paused: bool) -> None:
        super().pause(paused)
        user = self.user
        if user is not None and user.bos is not None and user.bos.transport is not None:
            with contextlib.suppress(RuntimeError):
                if paused:
                    user.bos.transport.pause_reading()
                else:
                    user.bos.transport.resume_reading()

    def close(self) -> None:
        if self.user is not None:
            self.user.close()


# ---------------------------------------------------------------- MSN


class _MsnClient(MsnUser):
    def __init__(self, email: str, on_sb: Any) -> None:
        super().__init__(email, Ledger())
        self._hook = on_sb

    def _on_sb(self, frame: object, now_ns: int) -> None:
        self._hook(frame)


class MsnSender(Sender):
    password = ""

    def __init__(self, book: Book, endpoint: Any, email: str, target: str, rate: float) -> None:
        super().__init__(book, endpoint, target, rate)
        self.email = email
        self.user: _MsnClient | None = None
        self.sb: MsnConnection | None = None
        self.by_trid: dict[int, int] = {}
        self.where: Endpoint | None = None
        self.board_left = False

    async def connect(self, where: Endpoint) -> None:
        self.where = where
        self.user = _MsnClient(self.email, self._frame)
        await self.user.login(
            where.host, where.ports["msn"], where.ports["msn_http"], self.password
        )

    async def serve(self) -> None:
        # A switchboard whose other party left (BYE) or that closed is opened again, as
        # a client does for its next message; the notification connection stays.
        while self.user is not None and self.user.ns is not None and self.user.ns.lost is None:
            if self.stopped:
                return
            try:
                assert self.where is not None
                self.board_left = False
                self.by_trid = {}
                self.sb = await asyncio.wait_for(
                    self.user.open_switchboard(self.where.host, self.target), 20
                )
            except (OSError, ClientError, TimeoutError, ValueError, IndexError) as exc:
                self.book.error(f"switchboard: {type(exc).__name__}")
                await asyncio.sleep(self.RETRY)
                continue
            await super().serve()
            if self.sb is not None:
                self.sb.close()

    def _frame(self, frame: object) -> None:
        if isinstance(frame, ErrorReply):
            seq = self.by_trid.pop(frame.trid or 0, None)
            if seq is not None:
                self.answered(seq, False)
            else:
                self.book.error(f"msn-error-{frame.code}")
        elif isinstance(frame, Command):
            if frame.verb in ("ACK", "NAK"):
                seq = self.by_trid.pop(frame.trid or 0, None)
                if seq is not None:
                    self.answered(seq, frame.verb == "ACK")
            elif frame.verb == "BYE":
                self.board_left = True

    def alive(self) -> bool:
        return (
            self.user is not None
            and self.user.ns is not None
            and self.user.ns.lost is None
            and self.sb is not None
            and self.sb.lost is None
            and not self.board_left
        )

    def write(self, seq: int, body: str) -> None:
        assert self.sb is not None
        trid = self.sb.send("MSG", "A", payload=text_payload(body))
        self.by_trid[trid] = seq

    def close(self) -> None:
        if self.user is not None:
            self.user.close()


class MsnReceiver(Receiver):
    password = ""

    def __init__(self, book: Book, endpoint: Any, email: str) -> None:
        super().__init__(book, endpoint)
        self.email = email
        self.user: _MsnClient | None = None

    async def connect(self, where: Endpoint) -> None:
        self.user = _MsnClient(self.email, self._frame)
        await self.user.login(
            where.host, where.ports["msn"], where.ports["msn_http"], self.password
        )

    def _frame(self, frame: object) -> None:
        if isinstance(frame, Command) and frame.verb == "MSG" and frame.payload is not None:
            head, _, body = frame.payload.partition(b"\r\n\r\n")
            if b"text/plain" in head:
                self.book.receive_text(body.decode("utf-8", "replace"))

    def alive(self) -> bool:
        return self.user is not None and self.user.ns is not None and self.user.ns.lost is None

    def close(self) -> None:
        if self.user is not None:
            self.user.close()


# ---------------------------------------------------------------- UIN


class _ScriptProcess:
    """The shipped UIN client in script mode: lines in, JSON events out."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, port: int, uin: str, password: str) -> None:
        env = dict(os.environ)
        env["UIN_PASSWORD"] = password
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.uin.client",
            "--server",
            f"127.0.0.1:{port}",
            "--uin",
            uin,
            "--script",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=str(REPO),
        )

    async def event(self) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            return None
        with contextlib.suppress(ValueError):
            found = json.loads(line)
            if isinstance(found, dict):
                return found
        return {}

    def line(self, text: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        if self.proc.stdin.is_closing():
            raise ClientError("UIN client gone")
        self.proc.stdin.write((text + "\n").encode())

    def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


class _UinAgent:
    password = ""
    uin = ""
    client: _ScriptProcess | None = None
    gone = True
    book: Book

    async def _login(self, where: Endpoint) -> None:
        self.client = _ScriptProcess()
        await self.client.start(where.ports["uin"], self.uin, self.password)
        while True:
            event = await self.client.event()
            if event is None:
                raise ClientError("UIN client exited before login")
            if event.get("event") == "logged_in":
                break
            if event.get("event") in ("login_failed", "disconnected"):
                raise ClientError(f"UIN login: {event}")
        self.gone = False
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.client is not None
        while True:
            event = await self.client.event()
            if event is None or event.get("event") == "disconnected":
                self.gone = True
                return
            self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.gone = True
        if self.client is not None:
            self.client.close()


class UinSender(_UinAgent, Sender):
    def __init__(self, book: Book, endpoint: Any, uin: str, target: str, rate: float) -> None:
        Sender.__init__(self, book, endpoint, target, rate)
        self.uin = uin

    async def connect(self, where: Endpoint) -> None:
        await self._login(where)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind in ("delivered", "message_failed"):
            parsed = parse_body(str(event.get("text", "")))
            if parsed is not None and parsed[0] == self.book.pair:
                if kind == "message_failed" and event.get("error") == "disconnected":
                    return  # the session ended first: cut, not refused
                self.answered(parsed[1], kind == "delivered")

    def alive(self) -> bool:
        return not self.gone

    def write(self, seq: int, body: str) -> None:
        assert self.client is not None
        self.client.line(f"/msg {self.target} {body}")


class UinReceiver(_UinAgent, Receiver):
    def __init__(self, book: Book, endpoint: Any, uin: str) -> None:
        Receiver.__init__(self, book, endpoint)
        self.uin = uin

    async def connect(self, where: Endpoint) -> None:
        await self._login(where)

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "message":
            self.book.receive_text(str(event.get("text", "")))

    def alive(self) -> bool:
        return not self.gone
