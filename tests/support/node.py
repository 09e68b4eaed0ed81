"""Start real gateway processes for end-to-end tests.

``start_node`` writes a TOML config (ephemeral ports everywhere, the test session's
Redis, a private data directory), runs ``python -m gateway run --config FILE`` exactly
as a user would, and waits until the node has written its runtime file (every
listener bound). Accounts are created through the admin HTTP API.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.config import load_config
from tests.support.ports import SETTINGS_MODELS, bound_ports, port_fields

REPO = Path(__file__).resolve().parents[2]
JSONLINE_FACTORY = "tests.support.jsonline:JsonLineAdapter"


class NodeError(RuntimeError):
    pass


def _ephemeral(network: str) -> dict[str, object]:
    """0 for every port the network's adapter binds (MSN: notification, switchboard and
    Passport HTTP), so no test gateway uses a default port."""
    model = SETTINGS_MODELS.get(network)
    return {"port": 0} if model is None else dict.fromkeys(port_fields(model), 0)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


class GatewayNode:
    def __init__(
        self,
        workdir: Path,
        redis_url: str,
        networks: Sequence[str],
        *,
        node_id: str = "",
        adapter_settings: dict[str, dict[str, object]] | None = None,
        delivery: dict[str, object] | None = None,
        heartbeat_seconds: float = 0.5,
        dead_after_seconds: float = 2.0,
        secret_key_file: Path | None = None,
        held_ports: Sequence[int] = (),
        redis_extra: dict[str, object] | None = None,
    ) -> None:
        """``held_ports``: fixed ports the test itself holds open on purpose (to test a
        collision); any other fixed port is refused. ``redis_extra``: more keys of the
        ``[redis]`` table (Sentinel addresses, ``wait_replicas``)."""
        self.workdir = workdir
        self.redis_url = redis_url
        self.node_id = node_id or f"node-{secrets.token_hex(3)}"
        self.token = secrets.token_urlsafe(16)
        self.data_dir = workdir / self.node_id
        self.config_path = workdir / f"{self.node_id}.toml"
        self.log_path = workdir / f"{self.node_id}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.runtime: dict[str, Any] = {}
        lines = [
            "[node]",
            f"id = {_toml_value(self.node_id)}",
            f"data_dir = {_toml_value(str(self.data_dir))}",
            f"heartbeat_seconds = {heartbeat_seconds}",
            f"dead_after_seconds = {dead_after_seconds}",
            "[redis]",
            f"url = {_toml_value(redis_url)}",
            *(f"{k} = {_toml_value(v)}" for k, v in (redis_extra or {}).items()),
            "[admin]",
            "port = 0",
            f"token = {_toml_value(self.token)}",
        ]
        if secret_key_file is not None:  # nodes of one cluster share it (sealed passwords)
            lines += ["[security]", f"secret_key_file = {_toml_value(str(secret_key_file))}"]
        if delivery:
            lines.append("[delivery]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in delivery.items()]
        settings = adapter_settings or {}
        for network in ("oscar", "msn", "uin", "jsonline"):
            lines.append(f"[adapters.{network}]")
            if network not in networks:
                lines.append("enabled = false")
                continue
            lines.append("enabled = true")
            table: dict[str, object] = {**_ephemeral(network), **settings.get(network, {})}
            if network == "jsonline":
                table.setdefault("factory", JSONLINE_FACTORY)
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        fixed = {
            ".".join(key): port
            for key, port in bound_ports(load_config(self.config_path, environ={})).items()
            if port != 0 and port not in held_ports
        }
        if fixed:  # a test asked for one: it would collide with ./dev run or another run
            raise NodeError(f"a test gateway must bind port 0 everywhere, not {fixed}")

    # ---- process

    def start(self, timeout: float = 30.0) -> GatewayNode:
        # The config file is the whole truth: no GATEWAY_* override from the caller's shell.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self._log = self.log_path.open("ab")
        runtime_file = self.data_dir / "runtime.json"
        runtime_file.unlink(missing_ok=True)  # a killed run's: not this start's
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(self.config_path), "run"],
            cwd=str(self.workdir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while not runtime_file.exists():
            if self.process.poll() is not None:
                raise NodeError(f"gateway exited ({self.process.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise NodeError(f"gateway did not start in {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        self.runtime = json.loads(runtime_file.read_text())
        return self

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as systemd or a container runtime would; returns the exit code."""
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise NodeError(f"gateway ignored SIGTERM:\n{self.log()}") from None
        self._log.close()
        return process.returncode

    def kill(self) -> None:
        """SIGKILL: the node dies without any cleanup."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # ---- listeners

    def port(self, network: str, index: int = 0) -> int:
        return int(self.runtime["listeners"][network][index]["port"])

    def listeners(self, network: str) -> list[dict[str, Any]]:
        return list(self.runtime["listeners"][network])

    # ---- admin API

    def api(
        self, method: str, path: str, body: object | None = None, token: str | None = None
    ) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.port('admin')}{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token if token is None else token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def add_account(
        self, network: str, handle: str, password: str, display_name: str = ""
    ) -> dict[str, Any]:
        status, body = self.api(
            "POST",
            "/v1/accounts",
            {
                "network": network,
                "handle": handle,
                "password": password,
                "display_name": display_name,
            },
        )
        if status != 200:
            raise NodeError(f"account add failed: {status} {body}")
        return dict(body)

    def link(self, *addresses: str) -> dict[str, Any]:
        status, body = self.api("POST", "/v1/links", {"addresses": list(addresses)})
        if status != 200:
            raise NodeError(f"link failed: {status} {body}")
        return dict(body)

    def whois(self, address: str) -> dict[str, Any]:
        from urllib.parse import quote

        status, body = self.api("GET", f"/v1/whois/{quote(address, safe='')}")
        if status != 200:
            raise NodeError(f"whois failed: {status} {body}")
        return dict(body)
