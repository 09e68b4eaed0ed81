"""The raw relay baseline: the framework's ceiling on this machine.

A minimal Twisted TCP server on the same reactor as the gateway (Twisted's asyncio
reactor, installed by ``gateway.runtime.install_reactor``). Connections come in
pairs: each sends a 4-byte pair id first; once both ends of a pair are there, every
byte one sends is written to the other. No parsing, no Redis, no per-message work:
what the gateway does beyond this is what it costs.

Run: ``python -m bench.relay PORT_FILE`` listens on 127.0.0.1, an ephemeral port,
and writes the port number to PORT_FILE once listening. SIGTERM stops it.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any, cast
from typing import Protocol as TypingProtocol

from twisted.internet.protocol import Factory, Protocol


class _Transport(TypingProtocol):
    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...


def _transport(end: Protocol) -> _Transport:
    return cast(_Transport, end.transport)


class RelayEnd(Protocol):
    def __init__(self, factory: RelayFactory) -> None:
        self.factory = factory
        self.partner: RelayEnd | None = None
        self.pair: int | None = None
        self._head = b""
        self._early: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        if self.pair is None:
            self._head += data
            if len(self._head) < 4:
                return
            (self.pair,) = struct.unpack(">I", self._head[:4])
            data, self._head = self._head[4:], b""
            self.factory.join(self)
            if not data:
                return
        if self.partner is not None:
            _transport(self.partner).write(data)
        else:
            self._early.append(data)

    def paired(self, partner: RelayEnd) -> None:
        self.partner = partner
        early, self._early = self._early, []
        for chunk in early:
            _transport(partner).write(chunk)

    def connectionLost(self, reason: Any = None) -> None:
        self.factory.leave(self)
        if self.partner is not None:
            self.partner.partner = None
            _transport(self.partner).loseConnection()


class RelayFactory(Factory):
    def __init__(self) -> None:
        self.waiting: dict[int, RelayEnd] = {}

    def buildProtocol(self, addr: Any) -> RelayEnd:
        return RelayEnd(self)

    def join(self, end: RelayEnd) -> None:
        assert end.pair is not None
        other = self.waiting.pop(end.pair, None)
        if other is None:
            self.waiting[end.pair] = end
            return
        other.paired(end)
        end.paired(other)

    def leave(self, end: RelayEnd) -> None:
        if end.pair is not None and self.waiting.get(end.pair) is end:
            del self.waiting[end.pair]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.relay PORT_FILE", file=sys.stderr)
        return 2
    from gateway.runtime import install_reactor

    reactor = install_reactor()
    port = reactor.listenTCP(0, RelayFactory(), interface="127.0.0.1")
    target = Path(argv[0])
    partial = target.with_suffix(".tmp")
    partial.write_text(str(port.getHost().port))
    partial.replace(target)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
