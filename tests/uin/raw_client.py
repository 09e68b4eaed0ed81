"""A UIN client on a real UDP socket, driven synchronously from a test: the project's
own client session (login, keys, reliability) plus ways to put datagrams on the wire
that the shipped client would never send (bad payloads, reserved bits, forged acks),
each still correctly numbered and MACed, so the gateway sees an authenticated peer
breaking the protocol."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from adapters.uin.client.session import (
    ClientEvent,
    ClientSession,
    ClientState,
    Disconnected,
    ServerCommand,
)
from adapters.uin.codec import (
    HEADER_SIZE,
    MAC_SIZE,
    Body,
    Command,
    Datagram,
    ErrorCode,
    Reader,
    UinProtocolError,
    encode,
    frame,
    mac,
)


@dataclass(frozen=True)
class RawPayload(Body):
    """Any payload bytes under any command: the codec writes them as they are."""

    COMMAND: ClassVar[Command] = Command.PING  # replaced per instance in __post_init__
    command: Command
    payload: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "COMMAND", self.command)

    def encode_payload(self) -> bytes:
        return self.payload

    @classmethod
    def decode_payload(cls, r: Reader) -> RawPayload:
        raise NotImplementedError


class RawClient:
    def __init__(self, port: int, uin: int, password: str, *, want_utf8: bool = False) -> None:
        self.server = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.session = ClientSession(uin, password, want_utf8=want_utf8)
        self.events: list[ClientEvent] = []
        self.mangles: list[tuple[Command, Callable[[bytes], bytes]]] = []

    def close(self) -> None:
        self.sock.close()

    # ---- the loop

    def _flush(self) -> None:
        for data in self.session.datagrams_to_send(time.monotonic()):
            header = frame(data)
            for command, mangle in self.mangles:
                if header.seq and header.command == command:
                    data = self.remac(mangle(data))  # retransmissions too
            self.sock.sendto(data, self.server)

    def pump(self, until: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Run the session until ``until()`` holds (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        self._flush()
        while not until():
            now = time.monotonic()
            if now >= deadline:
                return False
            timer = self.session.get_timer()
            wait = deadline - now if timer is None else min(deadline - now, max(timer - now, 0))
            self.sock.settimeout(max(wait, 0.001))
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                data = b""
            now = time.monotonic()
            if data:
                with contextlib.suppress(UinProtocolError):  # dropped, as the client does
                    self.events += self.session.receive(data, now)
            timer = self.session.get_timer()
            if timer is not None and now >= timer:
                self.events += self.session.handle_timer(now)
            self._flush()
        return True

    def login(self, timeout: float = 15.0) -> RawClient:
        self.session.start(time.monotonic())
        ok = self.pump(lambda: self.session.state is ClientState.ONLINE, timeout)
        assert ok, f"login failed: {self.events}"
        return self

    # ---- what the test looks for

    def commands(self, kind: type[Body]) -> list[Body]:
        return [
            e.body for e in self.events if isinstance(e, ServerCommand) and isinstance(e.body, kind)
        ]

    def wait_command(self, kind: type[Body], timeout: float = 10.0) -> Body:
        assert self.pump(lambda: bool(self.commands(kind)), timeout), self.events
        return self.commands(kind)[0]

    def disconnected(self, timeout: float = 5.0) -> ErrorCode | None:
        """The reason the session ended within ``timeout``, or None if it did not."""

        def ended() -> bool:
            return any(isinstance(e, Disconnected) for e in self.events)

        if not self.pump(ended, timeout):
            return None
        return next(e.reason for e in self.events if isinstance(e, Disconnected))

    # ---- sending what the shipped client would not

    def send(self, body: Body, mangle: Callable[[bytes], bytes] | None = None) -> None:
        """Queue ``body`` as the next reliable command; ``mangle`` rewrites its bytes
        (the MAC is recomputed afterwards, so the datagram stays authenticated)."""
        if mangle is not None:
            self.mangles.append((body.COMMAND, mangle))
        assert self.session.send(body)
        self._flush()

    def send_unsequenced(self, body: Body, ack: int | None = None) -> None:
        """An authenticated seq-0 datagram (an ACK, say) with the given header ack."""
        channel = self.session.channel
        assert channel is not None
        up_to = channel.received_up_to if ack is None else ack
        datagram = Datagram(body, self.session.session_id, self.session.uin, 0, up_to)
        self.sock.sendto(encode(datagram, self.key), self.server)

    @property
    def key(self) -> bytes:
        keys = self.session._keys
        assert keys is not None
        return keys[0]

    def remac(self, data: bytes) -> bytes:
        """``data`` (header + payload + some trailer) with its length and MAC redone."""
        body = bytearray(data[:-MAC_SIZE])
        body[26:28] = (len(body) - HEADER_SIZE).to_bytes(2, "big")
        return bytes(body) + mac(self.key, bytes(body))
