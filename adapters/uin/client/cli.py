"""``uin-client``: the terminal UIN client.

Interactive by default: a prompt with line editing and history (prompt_toolkit,
``terminal.py``), incoming text printed above the line being typed, replies, echo of
your own messages with a delivery mark, nicknames beside numbers, and a new login
when the server comes back after a restart. With ``--script`` it reads one command per
line from stdin and prints one JSON event per line on stdout, for tests and scripts.
The password comes from the environment variable named by ``--password-env``
(default ``UIN_PASSWORD``) or is asked for; it is never a command-line argument
(other users could read it with ps).

Exit codes: 0 after a normal logout, 1 after a failed login or a lost session, 2 for
a usage error or no password, 3 when the server address cannot be used (unknown host,
bad port).

I/O is plain asyncio: one UDP socket, stdin as a stream (script mode) or
prompt_toolkit (interactive), the protocol's sans-IO session driven with
``time.monotonic()``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import socket
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
from adapters.uin.codec import ErrorCode, Status, UinProtocolError
from adapters.uin.translate import MAX_BODY_CHARS

DEFAULT_PORT = 4000
EXIT_OK, EXIT_LOST, EXIT_USAGE, EXIT_ADDRESS = 0, 1, 2, 3
# Reasons after which the interactive client logs in again by itself: the server went
# away or the channel died. Never after a logout, a refused password or another login
# of the same UIN (two clients would take turns forever).
RECONNECT_AFTER = frozenset(
    {ErrorCode.SERVER_SHUTDOWN, ErrorCode.TIMEOUT, ErrorCode.INTERNAL, ErrorCode.PROTOCOL_ERROR}
)
RECONNECT_FIRST, RECONNECT_MAX = 1.0, 30.0


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


class AddressError(Exception):
    """The --server address cannot be used; the message is one line for the user."""


def resolve(text: str) -> tuple[str, int]:
    """``host[:port]`` as a numeric (address, port) for a UDP socket, or AddressError."""
    host, port = _server(text)
    if not 0 < port < 65536:
        raise AddressError(f"bad port in {text!r}: use host:1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AddressError(f"cannot find server {host!r}: {why}") from None
    if not infos:
        raise AddressError(f"cannot find server {host!r}")
    address = infos[0][4]
    return str(address[0]), int(address[1])


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
    """Drives a ClientSession + Messenger over an asyncio UDP socket. With
    ``reconnect`` it logs in again (new session, same socket, same contacts) after the
    server went away, backing off from 1 s to 30 s."""

    def __init__(
        self,
        make_session: Callable[[], ClientSession],
        emit: Callable[[UiEvent], None],
        *,
        reconnect: bool = False,
    ) -> None:
        self._make_session = make_session
        self.session = make_session()
        self.messenger = Messenger(self.session)
        self.emit = emit
        self.reconnect = reconnect
        self.current_chat: int | None = None
        self._udp: _Udp | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = RECONNECT_FIRST
        self._was_online = False
        self._quitting = False
        self.finished = asyncio.Event()
        self.ready = asyncio.Event()  # logged in, or given up
        self.exit_code = EXIT_OK
        # Seconds a "delivered" waits for a MESSAGE_FAILED that is already on its way
        # (the gateway acks a message before its core has routed it); 0: report at once.
        self.settle = 0.0
        self._held: dict[object, asyncio.TimerHandle] = {}

    @property
    def target(self) -> int | None:
        """Where a plain line goes: the current chat, else whoever wrote last."""
        return self.current_chat if self.current_chat is not None else self.messenger.last_from

    async def connect(self, server: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: _Udp(self._datagram), remote_addr=server
        )
        self._udp = proto
        self.session.start(time.monotonic())
        self._flush()

    def _retryable(self, ui: UiEvent) -> bool:
        if not self.reconnect or self._quitting or not self._was_online:
            return False
        if ui["event"] == "disconnected":
            return ErrorCode[str(ui["reason"]).upper()] in RECONNECT_AFTER
        return ui["event"] == "login_failed" and ui["error"] == "timeout"

    def _events(self, events: list[ClientEvent]) -> None:
        retry = False
        for ui in self.messenger.handle(events):
            if ui["event"] == "logged_in":
                self._was_online = True
                self._retry_delay = RECONNECT_FIRST
            if ui["event"] in ("login_failed", "disconnected"):
                if self._retryable(ui):
                    retry = True
                elif ui["event"] == "login_failed" or ui["reason"] != "logged_out":
                    self.exit_code = EXIT_LOST
            if ui["event"] == "delivered" and self.settle > 0:
                self._hold(ui)
                continue
            if ui["event"] == "message_failed" and ui.get("msg_id") in self._held:
                self._held.pop(ui["msg_id"]).cancel()
            self.emit(ui)
        if retry:
            self._schedule_retry()
            return
        if self.session.state in (ClientState.ONLINE, ClientState.CLOSING, ClientState.CLOSED):
            self.ready.set()
        if self.session.state is ClientState.CLOSED and self._retry is None:
            self.finished.set()

    def _hold(self, ui: UiEvent) -> None:
        msg_id = ui["msg_id"]

        def release() -> None:
            self._held.pop(msg_id, None)
            self.emit(ui)

        self._held[msg_id] = asyncio.get_running_loop().call_later(self.settle, release)

    def _schedule_retry(self) -> None:
        delay = self._retry_delay
        self._retry_delay = min(delay * 2, RECONNECT_MAX)
        self.emit({"event": "reconnecting", "seconds": delay})
        self._retry = asyncio.get_running_loop().call_later(delay, self._login_again)

    def _login_again(self) -> None:
        self._retry = None
        self.session = self._make_session()
        self.messenger.replace_session(self.session)
        self.session.start(time.monotonic())
        self._flush()

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
        if intent.verb == "reply" and m.last_from is None:
            self.emit({"event": "error", "text": "nobody has written to you yet"})
            return
        if intent.verb in ("msg", "reply"):
            to = intent.uin if intent.verb == "msg" else m.last_from
            assert to is not None
            msg_id = m.send_message(to, intent.text)
            ok = msg_id is not None
            if ok:
                self.current_chat = to
                self.emit({"event": "sent", "to": to, "msg_id": msg_id})
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
            online = self.session.state is ClientState.ONLINE
            why = "not logged in right now"
            if online and intent.verb in ("msg", "reply"):
                why = f"message too long (at most {MAX_BODY_CHARS} characters)"
            self.emit({"event": "error", "text": f"cannot {intent.verb}: {why}"})
        self._flush()

    def quit(self) -> None:
        self._quitting = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.session.state in (ClientState.IDLE, ClientState.CLOSED):
            self.finished.set()
            return
        self._events(self.session.logout(time.monotonic()))
        self._flush()

    def close(self) -> None:
        for held in self._held.values():
            held.cancel()
        if self._retry is not None:
            self._retry.cancel()
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


def _session_factory(args: argparse.Namespace, password: str) -> Callable[[], ClientSession]:
    status = Status[args.status.upper()]

    def make() -> ClientSession:
        return ClientSession(args.uin, password, want_utf8=args.utf8, presence=status)

    return make


async def _chat(args: argparse.Namespace, password: str, server: tuple[str, int]) -> int:
    """Script mode: commands on stdin, one JSON event per line on stdout."""
    holder: list[ClientRunner] = []
    emit = _printer(args.script, lambda: holder[0].messenger.contacts if holder else {})
    runner = ClientRunner(_session_factory(args, password), emit)
    holder.append(runner)
    await runner.connect(server)
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
                intent = parse_command(line, runner.target)
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
    return runner.exit_code


async def _register(args: argparse.Namespace, password: str, server: tuple[str, int]) -> int:
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

    _, proto = await loop.create_datagram_endpoint(lambda: _Udp(on_datagram), remote_addr=server)
    client.start(time.monotonic())
    pump()
    await done.wait()
    if proto.transport is not None:
        proto.transport.close()
    return 0 if result and result[0] is not None else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        server = resolve(args.server)
    except AddressError as exc:
        sys.stderr.write(f"uin-client: {exc}\n")
        return EXIT_ADDRESS
    password = os.environ.get(args.password_env, "")
    if not password:
        if args.script or not sys.stdin.isatty():
            sys.stderr.write(f"uin-client: set the password in ${args.password_env}\n")
            return EXIT_USAGE
        password = getpass.getpass("password: ")
    if args.script and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    try:
        if args.register:
            return asyncio.run(_register(args, password, server))
        if args.script:
            return asyncio.run(_chat(args, password, server))
        from adapters.uin.client.terminal import Terminal  # prompt_toolkit: people only

        runner = ClientRunner(_session_factory(args, password), lambda _: None, reconnect=True)
        return asyncio.run(Terminal(runner).run(server))
    except KeyboardInterrupt:
        return 130
