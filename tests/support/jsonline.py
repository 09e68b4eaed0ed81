"""A test-only network: newline-delimited JSON over TCP, carrying canonical events.

It lets the core's multi-node and admin tests run real processes and real sockets
before (and independently of) the real network adapters. Requests, one per line:
``{"op": "login", "address": "...", "password": "..."}`` and
``{"op": "send", "event": {...canonical event...}}``. The server writes
``{"op": "logged_in", ...}``, ``{"op": "error", ...}`` and one
``{"op": "deliver", "peer": ..., "event": {...}}`` per delivery.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet.interfaces import IReactorCore
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver

from adapters.aio import as_deferred, wait_deferred
from adapters.contract import CoreServices, Delivery, Listener
from schema.events import EVENT_ADAPTER, event_to_json
from schema.records import PlainPasswordProof


class JsonLineConnection(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 256 * 1024

    def __init__(self, core: CoreServices) -> None:
        self.core = core
        self.address: str | None = None
        self.session_id: str | None = None
        self.gone = False

    def _send(self, payload: dict[str, Any]) -> None:
        self.transport.write(json.dumps(payload).encode() + b"\n")

    def lineReceived(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            op = request["op"]
        except (ValueError, KeyError, TypeError):
            self._send({"op": "error", "error": "bad request"})
            self.transport.loseConnection()
            return
        if op == "login" and self.address is None:
            as_deferred(self._login(request["address"], request["password"]))
        elif op == "send" and self.session_id is not None:
            try:
                event = EVENT_ADAPTER.validate_python(request["event"])
            except ValueError as exc:
                self._send({"op": "error", "error": str(exc)[:200]})
                return
            if event.sender != self.address:
                self._send({"op": "error", "error": "sender is not you"})
                return
            as_deferred(self.core.submit(event)).addCallback(
                lambda _: self._send({"op": "sent", "id": event.id})
            )
        else:
            self._send({"op": "error", "error": f"unexpected {op}"})

    async def _login(self, address: str, password: str) -> None:
        result = await self.core.check_login(address, PlainPasswordProof(password))
        if not result.ok or result.account is None:
            self._send({"op": "error", "error": result.outcome.value})
            return
        self.address = result.account.address
        opened = await self.core.open_session(self.address, self)
        self.session_id = opened.session_id
        if self.gone:
            await self.core.close_session(opened.session_id)
            return
        self._send({"op": "logged_in", "address": self.address, "offline": len(opened.offline)})

    def deliver(self, delivery: Delivery) -> bool:
        if self.gone:
            return False
        self.transport.write(
            json.dumps(
                {
                    "op": "deliver",
                    "peer": delivery.peer,
                    "peer_display": delivery.peer_display,
                    "event": json.loads(event_to_json(delivery.event)),
                }
            ).encode()
            + b"\n"
        )
        return True

    def connectionLost(self, reason: object = None) -> None:
        self.gone = True
        if self.session_id is not None:
            as_deferred(self.core.close_session(self.session_id))


class JsonLineAdapter:
    network = "jsonline"

    def __init__(self) -> None:
        self._port: Any = None

    async def start(
        self, core: CoreServices, reactor: IReactorCore, settings: Mapping[str, object]
    ) -> Sequence[Listener]:
        factory = Factory.forProtocol(lambda: JsonLineConnection(core))
        port = int(str(settings.get("port", 0)))
        self._port = reactor.listenTCP(port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        return [Listener("test JSON lines", self._port)]

    async def stop(self) -> None:
        if self._port is not None:
            await wait_deferred(self._port.stopListening())
