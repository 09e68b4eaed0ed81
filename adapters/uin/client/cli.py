"""``uin-client``: the terminal UIN client.

Interactive by default (readable lines, ``/msg 700123 안녕``, ``/help``); with
``--script`` it reads one command per line from stdin and prints one JSON event per
line on stdout, for tests and scripts. The password comes from the environment
variable named by ``--password-env`` (default ``UIN_PASSWORD``) or is asked for; it
is never a command-line argument (other users could read it with ps).

I/O is plain asyncio: one UDP socket, stdin as a stream, the protocol's sans-IO
session driven with ``time.monotonic()``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from collections.abc import Callable
from typing import cast

from adapters.uin.client.commands import (
    CommandError,
    Intent,
    as_json,
    describe,
    parse_command,
)
from adapters.uin.client.messenger import Contact, Messenger, UiEvent
from adapters.uin.client.session import (
    ClientEvent,
    ClientSession,
    ClientState,
    RegistrationClient,
)
from adapters.uin.codec import Status, UinProtocolError

DEFAULT_PORT = 4000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="uin-client", description="UIN messenger client")
    parser.add_argument("--server", default="127.0.0.1", help="host[:port] (default port 4000)")
    parser.add_argument("--uin", type=int, help="your UIN")
    parser.add_argument("--password-env", default="UIN_PASSWORD", metavar="VAR")
    parser.add_argument("--utf8", action="store_true", help="ask for UTF-8 instead of CP949")
    parser.add_argument(
        "--status", default="online", choices=["online", "away", "busy", "invisible"]
    )
    parser.add_argument("--script", action="store_true", help="commands on stdin, JSON events out")
    parser.add_argument("--register", metavar="NICKNAME", help="register a new UIN and exit")
    args = parser.parse_args(argv)
    if args.register is None and args.uin is None:
        parser.error("--uin is required (or --register NICKNAME)")
    return args


def _server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and host:
        return host.strip("[]"), int(port)
    return text, DEFAULT_PORT


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors (port unreachable...): retransmission copes


class ClientRunner:
    """Drives a ClientSession + Messenger over an asyncio UDP socket."""

    def __init__(self, session: ClientSession, emit: Callable[[UiEvent], None]) -> None:
        self.session = session
        self.messenger = Messenger(session)
        self.emit = emit
        self.current_chat: int | None = None
        self._udp: _Udp | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.finished = asyncio.Event()
        self.ready = asyncio.Event()  # logged in, or given up
        self.exit_code = 0

    async def connect(self, server: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: _Udp(self._datagram), remote_addr=server
        )
        self._udp = proto
        self.session.start(time.monotonic())
        self._flush()

    def _events(self, events: list[ClientEvent]) -> None:
        for ui in self.messenger.handle(events):
            if ui["event"] == "login_failed" or (
                ui["event"] == "disconnected" and ui["reason"] != "logged_out"
            ):
                self.exit_code = 1
            self.emit(ui)
        if self.session.state in (ClientState.ONLINE, ClientState.CLOSING, ClientState.CLOSED):
            self.ready.set()
        if self.session.state is ClientState.CLOSED:
            self.finished.set()

    def _datagram(self, data: bytes) -> None:
        try:
            events = self.session.receive(data, time.monotonic())
        except UinProtocolError:
            return  # not for us, forged or stale: dropped
        self._events(events)
        self._flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._events(self.session.handle_timer(time.monotonic()))
        self._flush()

    def _flush(self) -> None:
        now = time.monotonic()
        if self._udp is not None and self._udp.transport is not None:
            for data in self.session.datagrams_to_send(now):
                self._udp.transport.sendto(data)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.session.get_timer()
        if when is not None:
            self._timer = asyncio.get_running_loop().call_later(
                max(0.0, when - now), self._on_timer
            )

    def do(self, intent: Intent) -> None:
        m = self.messenger
        ok = True
        if intent.verb == "msg":
            msg_id = m.send_message(intent.uin, intent.text)
            ok = msg_id is not None
            if ok:
                self.emit({"event": "sent", "to": intent.uin, "msg_id": msg_id})
        elif intent.verb == "chat":
            self.current_chat = intent.uin
        elif intent.verb == "add":
            ok = m.add_contact(intent.uin, intent.text)
        elif intent.verb == "remove":
            ok = m.remove_contact(intent.uin)
        elif intent.verb in ("auth", "deny"):
            ok = m.authorize(intent.uin, intent.verb == "auth", intent.text)
        elif intent.verb == "status":
            ok = m.set_status(intent.status, intent.text)
        elif intent.verb == "contacts":
            rows = [c.as_dict() for c in sorted(m.contacts.values(), key=lambda c: c.uin)]
            self.emit({"event": "contacts", "contacts": rows})
        elif intent.verb == "search":
            ok = m.search(intent.text) is not None
        elif intent.verb == "typing":
            ok = m.typing(intent.uin, intent.flag)
        elif intent.verb == "help":
            self.emit({"event": "help"})
        elif intent.verb == "quit":
            self.quit()
        if not ok:
            self.emit({"event": "error", "text": f"cannot {intent.verb} now (not logged in?)"})
        self._flush()

    def quit(self) -> None:
        if self.session.state in (ClientState.IDLE, ClientState.CLOSED):
            self.finished.set()
            return
        self._events(self.session.logout(time.monotonic()))
        self._flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _printer(script: bool, contacts: Callable[[], dict[int, Contact]]) -> Callable[[UiEvent], None]:
    def emit(event: UiEvent) -> None:
        line = as_json(event) if script else describe(event, contacts())
        if line:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    return emit


async def _chat(args: argparse.Namespace, password: str) -> int:
    status = Status[args.status.upper()]
    session = ClientSession(args.uin, password, want_utf8=args.utf8, presence=status)
    holder: list[ClientRunner] = []
    emit = _printer(args.script, lambda: holder[0].messenger.contacts if holder else {})
    runner = ClientRunner(session, emit)
    holder.append(runner)
    await runner.connect(_server(args.server))
    reader = await _stdin_lines()

    async def read_commands() -> None:
        while True:
            raw = await reader.readline()
            await runner.ready.wait()  # commands typed early wait for the login
            if runner.finished.is_set():
                return
            if not raw:
                runner.quit()  # EOF: log out (after everything before it) and leave
                return
            line = raw.decode("utf-8", errors="replace")
            try:
                intent = parse_command(line, runner.current_chat)
            except CommandError as exc:
                emit({"event": "error", "text": str(exc)})
                continue
            if intent is not None:
                runner.do(intent)
            if intent is not None and intent.verb == "quit":
                return

    commands = asyncio.ensure_future(read_commands())
    await runner.finished.wait()
    commands.cancel()
    runner.close()
    failed = (
        session.state is ClientState.CLOSED
        and session.channel is None
        and not any(True for _ in ())
    )
    return 0 if not failed or runner.messenger.session.server_params is not None else 1


async def _register(args: argparse.Namespace, password: str) -> int:
    emit = _printer(args.script, dict)  # no contacts while registering
    client = RegistrationClient(password, args.register, want_utf8=args.utf8)
    done = asyncio.Event()
    result: list[int | None] = []
    loop = asyncio.get_running_loop()
    timer: list[asyncio.TimerHandle] = []

    def pump() -> None:
        for data in client.datagrams_to_send():
            if proto.transport is not None:
                proto.transport.sendto(data)
        for t in timer:
            t.cancel()
        timer.clear()
        when = client.get_timer()
        if when is not None:
            timer.append(loop.call_later(max(0.0, when - time.monotonic()), fire))

    def finish(outcomes: list[object]) -> None:
        for outcome in outcomes:
            uin = getattr(outcome, "uin", None)
            error = getattr(outcome, "error", None)
            if uin is not None:
                emit({"event": "registered", "uin": uin})
            else:
                emit(
                    {
                        "event": "registration_failed",
                        "error": str(getattr(error, "name", error)).lower(),
                    }
                )
            result.append(uin)
            done.set()

    def fire() -> None:
        finish(list(client.handle_timer(time.monotonic())))
        pump()

    def on_datagram(data: bytes) -> None:
        try:
            outcomes = client.receive(data, time.monotonic())
        except UinProtocolError:
            return
        finish(list(outcomes))
        pump()

    _, proto = await loop.create_datagram_endpoint(
        lambda: _Udp(on_datagram), remote_addr=_server(args.server)
    )
    client.start(time.monotonic())
    pump()
    await done.wait()
    if proto.transport is not None:
        proto.transport.close()
    return 0 if result and result[0] is not None else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    password = os.environ.get(args.password_env, "")
    if not password:
        if args.script or not sys.stdin.isatty():
            sys.stderr.write(f"uin-client: set the password in ${args.password_env}\n")
            return 2
        password = getpass.getpass("password: ")
    if args.script and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    try:
        return asyncio.run(_register(args, password) if args.register else _chat(args, password))
    except KeyboardInterrupt:
        return 130
