"""A blocking client for the test-only JSON-lines network."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from schema.events import Message


class JsonLineClient:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.timeout = timeout

    def send(self, payload: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(payload).encode() + b"\n")

    def read(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no line from the gateway")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("gateway closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        result: dict[str, Any] = json.loads(line)
        return result

    def read_op(self, op: str, timeout: float | None = None) -> dict[str, Any]:
        """The next line with ``op``, skipping others (presence, acks)."""
        while True:
            line = self.read(timeout)
            if line["op"] == op:
                return line

    def read_kind(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        while True:
            line = self.read_op("deliver", timeout)
            if line["event"]["kind"] == kind:
                return line

    def login(self, address: str, password: str) -> dict[str, Any]:
        self.send({"op": "login", "address": address, "password": password})
        return self.read_op("logged_in") if True else {}

    def message(self, sender: str, recipient: str, body: str) -> Message:
        message = Message(sender=sender, recipient=recipient, body=body)
        self.send({"op": "send", "event": json.loads(message.model_dump_json())})
        return message

    def close(self) -> None:
        self.sock.close()
