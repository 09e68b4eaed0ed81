"""Drive the shipped terminal client (``python -m adapters.uin.client --script``) as a
subprocess, and a seeded lossy UDP relay to put between it and a real gateway."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
Event = dict[str, Any]


class ScriptClient:
    def __init__(self, port: int, uin: int, password: str, *extra: str) -> None:
        env = dict(os.environ)
        env["UIN_PASSWORD"] = password
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.uin.client",
                "--server",
                f"127.0.0.1:{port}",
                "--uin",
                str(uin),
                "--script",
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(REPO),
        )
        self.seen: list[Event] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._queue.put(json.loads(raw))
        self._queue.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode("utf-8"))
        self.proc.stdin.flush()

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 30.0) -> Event:
        for event in self.seen:
            if predicate(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; saw {self.seen}; stderr: {self.stderr()}")
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                raise AssertionError(f"client exited; saw {self.seen}; stderr: {self.stderr()}")
            self.seen.append(event)
            if predicate(event):
                return event

    def kind(self, kind: str, timeout: float = 30.0) -> Event:
        return self.wait_for(lambda e: e["event"] == kind, timeout)

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.seen if e["event"] == kind]

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode("utf-8", "replace")

    def quit(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                self.send("/quit")
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class LossyRelay:
    """A UDP relay on 127.0.0.1 that drops ``loss`` of the datagrams and duplicates
    ``duplicate`` of them, in both directions; one upstream socket per client so the
    gateway sees a stable source address for each."""

    def __init__(
        self, upstream: tuple[str, int], loss: float = 0.2, duplicate: float = 0.05, seed: int = 1
    ) -> None:
        self.upstream = upstream
        self.loss, self.duplicate = loss, duplicate
        self.rng = random.Random(seed)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.backs: dict[tuple[str, int], socket.socket] = {}
        self.dropped = 0
        self.passed = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _send(self, sock: socket.socket, data: bytes, to: tuple[str, int]) -> None:
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.passed += 1
        for _ in range(2 if self.rng.random() < self.duplicate else 1):
            sock.sendto(data, to)

    def _run(self) -> None:
        while not self._stop:
            socks = [self.front, *self.backs.values()]
            ready, _, _ = select.select(socks, [], [], 0.1)
            for sock in ready:
                try:
                    data, addr = sock.recvfrom(2048)
                except OSError:
                    continue
                if sock is self.front:
                    back = self.backs.get(addr)
                    if back is None:
                        back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        back.bind(("127.0.0.1", 0))
                        self.backs[addr] = back
                    self._send(back, data, self.upstream)
                else:
                    client = next(a for a, s in self.backs.items() if s is sock)
                    self._send(self.front, data, client)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        for sock in [self.front, *self.backs.values()]:
            sock.close()
