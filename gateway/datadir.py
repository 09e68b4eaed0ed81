"""One gateway per data directory: an exclusive lock on ``<data_dir>/gateway.lock``.

Theory of operation. ``python -m gateway run`` takes an exclusive, non-blocking
``flock`` on the lock file before anything else touches the directory (the sealing
key, the embedded Redis and its AOF, ``redis.url``, ``runtime.json``) and holds it
for the life of the process; the kernel drops it when the process ends however it
ends (SIGKILL included), so a stale lock never needs cleaning up. The holder writes
its pid into the file, so a second start can name it. The embedded redis-server
inherits the locked descriptor: if the gateway is killed (SIGKILL) and its server
lives on, the directory stays locked until that server stops, so a new gateway never
opens the same AOF beside it (and admin commands keep reaching it through
``redis.url``).

Admin commands never wait for nor need the lock while a gateway runs: they read
``redis.url``. Only when no gateway holds the directory does an admin command take
the lock, for as long as it runs an embedded Redis of its own, so that a gateway
started meanwhile is refused instead of opening the same AOF twice
(docs/adr/0012-one-gateway-per-data-directory.md).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "gateway.lock"


class DataDirBusy(Exception):
    """Another process holds the data directory."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        if pid is not None and not _alive(pid):
            # The gateway was killed; the embedded redis-server it started lives on and
            # holds the lock (it inherited it), still serving the URL in redis.url.
            super().__init__(
                f"data directory {data_dir} is held by the embedded redis-server that"
                f" gateway pid {pid} left running when it was killed; stop that server"
                " (redis-cli -u $(cat redis.url) shutdown) and start again"
            )
            return
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"data directory {data_dir} is in use by another gateway process ({holder});"
            " stop it first, or give this one another node.data_dir"
        )


class DataDirLock:
    """The held lock; :meth:`release` (or process exit) gives it up."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Take the lock or raise :class:`DataDirBusy`; OSError when the directory
        cannot be made or the file cannot be opened."""
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirBusy(data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(data_dir, fd)

    def fileno(self) -> int:
        """The locked descriptor (an embedded Redis inherits it: gateway/embedded.py)."""
        assert self._fd is not None, "released"
        return self._fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # The file stays: unlinking a lock file lets two processes lock two files.
            os.ftruncate(fd, 0)
            os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
