"""Starting the gateway wrongly: a real ``python -m gateway run`` process exits with its
documented code and one ``error:`` line, never a traceback (gateway/exits.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from gateway.cli import main
from gateway.exits import EXIT_CODES, EXIT_CONFIG, EXIT_IN_USE, EXIT_UNAVAILABLE
from tests.support.node import REPO, GatewayNode


def gateway(
    config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m gateway --config CONFIG ARGS`` to its end; GATEWAY_* from ``env`` only."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environ["PYTHONPATH"] = str(REPO)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        cwd=str(config.parent),
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line of a failed start (and no traceback anywhere)."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, output
    assert errors[0].startswith("error: "), output
    assert len(errors[0]) <= 300, errors[0]
    return errors[0]


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port some other program already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _config(tmp_path: Path, redis_url: str, networks: list[str], **adapters: object) -> Path:
    node = GatewayNode(
        tmp_path,
        redis_url,
        networks,
        node_id="n",
        adapter_settings=dict(adapters),  # type: ignore[arg-type]
        # The one fixed port allowed is the one this test holds open: the collision is
        # the point.
        held_ports=[v["port"] for v in adapters.values() if isinstance(v, dict) and "port" in v],
    )
    return node.config_path


def test_admin_port_in_use_is_one_line_exit_4(
    tmp_path: Path, redis_url: str, listening_port: int
) -> None:
    """The admin API's port taken: exit 4, one line naming it, no traceback."""
    cfg = _config(tmp_path, redis_url, [])
    result = gateway(cfg, "run", env={"GATEWAY_ADMIN__PORT": str(listening_port)})
    assert result.returncode == EXIT_IN_USE
    line = one_error_line(result)
    assert "admin" in line and str(listening_port) in line and "in use" in line


def test_adapter_port_in_use_is_one_line_exit_4(
    tmp_path: Path, redis_url: str, listening_port: int
) -> None:
    """An adapter's port taken (MSN here): exit 4, one line naming the network and port."""
    cfg = _config(tmp_path, redis_url, ["msn"], msn={"port": listening_port})
    result = gateway(cfg, "run")
    assert result.returncode == EXIT_IN_USE
    line = one_error_line(result)
    assert "msn" in line and str(listening_port) in line


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("GATEWAY_ADMIN__PORT", "eighty", "admin.port"),
        ("GATEWAY_NODE__HEARTBEAT_SECONDS", "[1, 2]", "node.heartbeat_seconds"),
        ("GATEWAY_NODE__NO_SUCH_KEY", "1", "node.no_such_key"),
        ("GATEWAY_NO_SUCH_SECTION__X", "1", "no_such_section"),
        ("GATEWAY_NODE__ID__DEEPER", "1", "node.id"),
        ("GATEWAY_ADAPTERS__MSN__PORT", "eighty", "adapters.msn.port"),
        ("GATEWAY_ADAPTERS__MSN__ENABLED", "maybe", "adapters.msn.enabled"),
        ("GATEWAY_REDIS__URL", "http://db:6379/0", "redis.url"),
        ("GATEWAY_REDIS__URL", "redis://:hunter2@db:port/0", "redis.url"),
        ("GATEWAY_ADMIN__HOST", "192.0.2.1", "admin HTTP API: cannot listen on 192.0.2.1"),
    ],
)
def test_bad_environment_value_is_one_line_exit_2(
    tmp_path: Path, redis_url: str, name: str, value: str, named: str
) -> None:
    """A bad GATEWAY_* value (type, unknown key, adapter setting, malformed Redis URL, a
    listen address the machine lacks): exit 2, one line naming the key, never the
    password of a Redis URL."""
    cfg = _config(tmp_path, redis_url, ["msn"])
    result = gateway(cfg, "run", env={name: value})
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    line = one_error_line(result)
    assert named in line
    assert "hunter2" not in result.stdout + result.stderr


def test_a_sealing_key_file_that_is_no_key_is_one_line_exit_2(
    tmp_path: Path, redis_url: str
) -> None:
    """security.secret_key_file holding something else than a key: exit 2, one line,
    for run and for an admin command."""
    key = tmp_path / "not-a-key"
    key.write_text("hello\n")
    cfg = _config(tmp_path, redis_url, [])
    result = gateway(cfg, "run", env={"GATEWAY_SECURITY__SECRET_KEY_FILE": str(key)})
    assert result.returncode == EXIT_CONFIG
    assert "32-byte key" in one_error_line(result)
    status = gateway(cfg, "status", env={"GATEWAY_SECURITY__SECRET_KEY_FILE": str(key)})
    assert status.returncode == EXIT_CONFIG and "32-byte key" in one_error_line(status)


def test_unreachable_redis_is_one_line_exit_3(tmp_path: Path, redis_url: str) -> None:
    """A well-formed Redis URL nobody answers at: exit 3, one line with host and port,
    not the password."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    cfg = _config(tmp_path, redis_url, [])
    url = f"redis://:hunter2@127.0.0.1:{closed}/0"
    result = gateway(cfg, "run", env={"GATEWAY_REDIS__URL": url})
    assert result.returncode == EXIT_UNAVAILABLE
    line = one_error_line(result)
    assert f"127.0.0.1:{closed}" in line
    assert "hunter2" not in result.stdout + result.stderr


def test_admin_command_with_unreachable_redis_is_one_line_exit_3(tmp_path: Path) -> None:
    """An admin command against a Redis nobody answers at: exit 3, one line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[redis]\nurl = 'redis://127.0.0.1:{closed}/0'\n")
    result = gateway(cfg, "status")
    assert result.returncode == EXIT_UNAVAILABLE
    assert result.stdout == "" and one_error_line(result)


def test_help_and_readme_document_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists every exit code with its meaning, and the README's table agrees."""
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", text, re.M), code
        assert f"| {code} | {meaning} |" in readme, code


# ---- one gateway per data directory (gateway/datadir.py)


def test_second_gateway_on_a_data_directory_is_refused(
    tmp_path: Path, gateway_node: Callable[..., GatewayNode]
) -> None:
    """A second run on a running gateway's data directory exits 4 with one line naming
    the directory and the running pid; the running one keeps its Redis URL, and the
    admin CLI still reaches it."""
    del gateway_node  # the session Redis is not used: this node runs the embedded one
    first = GatewayNode(tmp_path, "", [], node_id="solo")
    first.start()
    try:
        assert first.process is not None
        url_file = first.data_dir / "redis.url"
        url = url_file.read_text()
        second = gateway(first.config_path, "run", timeout=30)
        assert second.returncode == EXIT_IN_USE
        line = one_error_line(second)
        assert str(first.data_dir.resolve()) in line and f"pid {first.process.pid}" in line
        assert url_file.read_text() == url
        assert "embedded redis" not in second.stdout + second.stderr
        status = gateway(first.config_path, "status")
        assert status.returncode == 0, status.stderr
        assert [n["node"] for n in json.loads(status.stdout)["nodes"]] == ["solo"]
        assert first.api("GET", "/v1/status")[0] == 200
    finally:
        assert first.stop() == 0
    assert "Traceback" not in first.log()


def test_a_killed_gateways_redis_keeps_the_directory_locked(tmp_path: Path) -> None:
    """SIGKILL leaves the embedded redis-server running: a new start is refused (exit 4,
    one line saying so) instead of opening the same AOF beside it; admin commands reach
    that server; once it stops, the gateway starts again with the data."""
    node = GatewayNode(tmp_path, "", [], node_id="killed")
    node.start()
    url = (node.data_dir / "redis.url").read_text().strip()
    node.add_account("oscar", "123456", "pw")
    node.kill()
    leftover = redis.Redis.from_url(url)
    try:
        assert leftover.ping()
        again = gateway(node.config_path, "run", timeout=30)
        assert again.returncode == EXIT_IN_USE
        assert "redis-server" in one_error_line(again)
        listed = gateway(node.config_path, "account", "list", "oscar")
        assert listed.returncode == 0, listed.stderr
        assert [a["address"] for a in json.loads(listed.stdout)] == ["oscar:123456"]
    finally:
        with contextlib.suppress(redis.RedisError):
            leftover.shutdown()  # flushes the AOF, then exits
        leftover.close()
    (node.data_dir / "runtime.json").unlink()  # the killed node's: start() waits for a new one
    restarted = GatewayNode(tmp_path, "", [], node_id="killed").start()
    try:
        assert restarted.whois("oscar:123456")["account"] is not None
    finally:
        assert restarted.stop() == 0
