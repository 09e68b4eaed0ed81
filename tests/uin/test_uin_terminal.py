"""Issue 12, items 14 and 17: the interactive uin-client, driven like a person would
(prompt_toolkit pipe input: keys in, the lines a person would see out) against a real
gateway process, and its errors for a server address it cannot use."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from adapters.uin.client.cli import ClientRunner
from adapters.uin.client.session import ClientSession
from adapters.uin.client.terminal import Terminal

from .script_client import REPO, ScriptClient
from .test_uin_client import _run

FACTORY = {"uin": {"factory": "adapters.uin.adapter:UinAdapter"}}
ME, YOUNGHEE, MINSU = 700123, 700456, 700789
CLOCK = r"\[\d\d:\d\d\]"


# ---- item 14: an unusable server address is one line and exit code 3 -----------------


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("no-such-host.invalid", "cannot find server 'no-such-host.invalid'"),
        ("h:70000", "bad port"),
    ],
)
def test_unusable_server_address_is_one_line_and_exit_3(server: str, says: str) -> None:
    """An unknown host or a bad port gives one clear line on stderr and exit code 3,
    never a traceback."""
    result = _run("--server", server, "--uin", "700123", "--script", env={"UIN_PASSWORD": "x"})
    err = result.stderr.decode()
    assert result.returncode == 3, err
    assert err.startswith("uin-client: ") and says in err
    assert err.count("\n") == 1 and "Traceback" not in err


# ---- item 17: the interactive client -----------------------------------------------


@pytest.fixture
def node(gateway_node: Callable[..., Any]) -> Any:
    node = gateway_node(["uin"], adapter_settings=FACTORY)
    node.add_account("uin", str(ME), "pw-me", "철수")
    node.add_account("uin", str(YOUNGHEE), "pw-y", "영희")
    node.add_account("uin", str(MINSU), "pw-m", "민수")
    return node


class Person:
    """The interactive client in this process, typing through a pipe."""

    def __init__(self, pipe: PipeInput, port: int) -> None:
        self.pipe = pipe
        self.lines: list[str] = []
        runner = ClientRunner(lambda: ClientSession(ME, "pw-me"), lambda _: None, reconnect=True)
        self.runner = runner
        self.terminal = Terminal(runner, show=self.lines.append, patch=False)
        self.task = asyncio.ensure_future(self.terminal.run(("127.0.0.1", port)))

    def type(self, text: str) -> None:
        self.pipe.send_text(text)

    async def sees(self, pattern: str, timeout: float = 15.0, after: int = 0) -> str:
        """The first line (from index ``after``) matching the regular expression."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines[after:]:
                if re.search(pattern, line):
                    return line
            assert not self.task.done(), (self.lines, self.task)
            assert time.monotonic() < deadline, f"no {pattern!r} in {self.lines}"
            await asyncio.sleep(0.02)

    async def exit_code(self, timeout: float = 10.0) -> int:
        return await asyncio.wait_for(self.task, timeout)


def _as_person(port: int, scenario: Callable[[Person], Awaitable[None]]) -> None:
    async def main() -> None:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            person = Person(pipe, port)
            try:
                await person.sees(r"logged in as 700123")
                await scenario(person)
            finally:
                if not person.task.done():
                    person.task.cancel()

    asyncio.run(main())


async def _blocking(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


@pytest.mark.slow
def test_reply_goes_to_whoever_wrote_last(node: Any) -> None:
    """Two people write; ``/r`` and a plain line both answer the one who wrote last,
    and the prompt names them."""
    port = node.port("uin")
    younghee = ScriptClient(port, YOUNGHEE, "pw-y")
    minsu = ScriptClient(port, MINSU, "pw-m")

    async def scenario(me: Person) -> None:
        await _blocking(younghee.kind, "logged_in")
        await _blocking(minsu.kind, "logged_in")
        younghee.send(f"/msg {ME} 안녕하세요")
        await me.sees("700456.*: 안녕하세요")
        minsu.send(f"/msg {ME} 나도 있어")
        await me.sees("700789.*: 나도 있어")
        await me.sees(r"700789 is 민수")  # the quiet nickname lookup
        assert me.terminal.prompt_text() == "민수 (700789)> "
        me.type("/r 반가워\r")
        got = await _blocking(minsu.kind, "message")
        assert got["text"] == "반가워" and got["from"] == ME
        me.type("잘 지내?\r")  # a plain line: the current chat, 민수
        await _blocking(minsu.wait_for, lambda e: e.get("text") == "잘 지내?")
        assert younghee.of_kind("message") == []

    try:
        _as_person(port, scenario)
    finally:
        younghee.kill()
        minsu.kill()


@pytest.mark.slow
def test_own_messages_echo_with_time_and_delivery_mark(node: Any) -> None:
    """A sent message echoes as ``[hh:mm] → nick (uin): text ✓``; one the gateway
    refuses as a single ``✗ not delivered: reason`` line, never ✓ first."""
    port = node.port("uin")
    younghee = ScriptClient(port, YOUNGHEE, "pw-y")

    async def scenario(me: Person) -> None:
        await _blocking(younghee.kind, "logged_in")
        younghee.send(f"/msg {ME} 여보세요")
        await me.sees("700456 is 영희")
        me.type(f"/msg {YOUNGHEE} 네, 안녕하세요\r")
        line = await me.sees("네, 안녕하세요")
        assert re.fullmatch(CLOCK + r" → 영희 \(700456\): 네, 안녕하세요 ✓", line), line
        await _blocking(younghee.wait_for, lambda e: e.get("text") == "네, 안녕하세요")
        me.type("/msg 4000000000 누구세요\r")  # a UIN nobody has
        line = await me.sees("누구세요")
        assert re.fullmatch(CLOCK + r" → 4000000000: 누구세요 ✗ not delivered: \w+", line), line
        await asyncio.sleep(0.5)
        assert [x for x in me.lines if "누구세요" in x] == [line]

    try:
        _as_person(port, scenario)
    finally:
        younghee.kill()


@pytest.mark.slow
def test_nickname_stands_beside_the_number(node: Any) -> None:
    """Messages, the prompt and presence show ``nickname (uin)`` once the name is known."""
    port = node.port("uin")
    younghee = ScriptClient(port, YOUNGHEE, "pw-y")

    async def scenario(me: Person) -> None:
        await _blocking(younghee.kind, "logged_in")
        younghee.send(f"/msg {ME} 하나")
        await me.sees("700456 is 영희")
        younghee.send(f"/msg {ME} 둘")
        line = await me.sees(": 둘$")
        assert re.fullmatch(CLOCK + r" 영희 \(700456\): 둘", line), line
        assert me.terminal.prompt_text() == "영희 (700456)> "

    try:
        _as_person(port, scenario)
    finally:
        younghee.kill()


def _restart_on_the_same_port(node: Any) -> None:
    port = node.port("uin")
    assert node.stop() == 0
    config = node.config_path.read_text()
    node.config_path.write_text(
        re.sub(r"(\[adapters\.uin\]\nenabled = true\nport = )0\n", rf"\g<1>{port}\n", config)
    )
    node.start()
    assert node.port("uin") == port


@pytest.mark.slow
def test_logs_in_again_after_the_gateway_restarts(node: Any) -> None:
    """When the gateway process is restarted (GOODBYE(SERVER_SHUTDOWN)), the client
    logs in again by itself and messages flow both ways."""
    port = node.port("uin")

    async def scenario(me: Person) -> None:
        await _blocking(_restart_on_the_same_port, node)
        await me.sees("disconnected: server_shutdown")
        await me.sees("logging in again in")
        mark = len(me.lines)
        await me.sees(r"logged in as 700123", timeout=40, after=mark)
        younghee = ScriptClient(port, YOUNGHEE, "pw-y")
        try:
            await _blocking(younghee.kind, "logged_in")
            younghee.send(f"/msg {ME} 돌아왔어요")
            await me.sees("돌아왔어요")
            me.type("/r 반가워요\r")
            await _blocking(younghee.wait_for, lambda e: e.get("text") == "반가워요")
        finally:
            younghee.kill()

    _as_person(port, scenario)


@pytest.mark.slow
def test_ctrl_c_logs_out_and_exits_0(node: Any) -> None:
    """Ctrl-C at the prompt sends LOGOUT (the gateway closes the session at once) and
    the client exits 0."""
    port = node.port("uin")

    def uin_sessions() -> list[Any]:
        status, rows = node.api("GET", "/v1/sessions")
        assert status == 200
        return [r for r in rows if "700123" in str(r)]

    async def scenario(me: Person) -> None:
        await me.sees(r"contacts")  # the list arrives after the core opened the session
        assert await _blocking(uin_sessions)
        started = time.monotonic()
        me.type("\x03")  # Ctrl-C
        assert await me.exit_code() == 0
        assert time.monotonic() - started < 4  # LOGOUT was acked, not waited out
        await me.sees("disconnected: logged_out")
        assert await _blocking(uin_sessions) == []

    _as_person(port, scenario)


class Pty:
    """``uin-client`` as a person starts it: a child process on a pseudo-terminal."""

    def __init__(self, port: int, uin: int, password: str) -> None:
        master, slave = pty.openpty()
        env = dict(os.environ, UIN_PASSWORD=password, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.uin.client",
                "--server",
                f"127.0.0.1:{port}",
                "--uin",
                str(uin),
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=str(REPO),
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.screen = b""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.screen += chunk

    def text(self) -> str:
        plain = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r", b"", self.screen)
        return plain.decode("utf-8", "replace")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait_text(self, needle: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert time.monotonic() < deadline, f"no {needle!r} on screen:\n{self.text()}"
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.mark.slow
def test_real_terminal_keeps_the_half_typed_line_and_ctrl_c_exits_0(node: Any) -> None:
    """On a real (pseudo-)terminal: a message arriving while a line is half typed is
    shown and the line is kept whole; Ctrl-C logs out and the process exits 0."""
    port = node.port("uin")
    younghee = ScriptClient(port, YOUNGHEE, "pw-y")
    me = Pty(port, ME, "pw-me")
    try:
        younghee.kind("logged_in")
        me.wait_text("logged in as 700123")
        me.type(f"/msg {YOUNGHEE} 반")  # half a line, not sent yet
        time.sleep(0.3)
        younghee.send(f"/msg {ME} 끼어들기")
        me.wait_text("700456: 끼어들기")
        time.sleep(0.3)
        # The prompt line was erased (ESC [ J) before the message was written, and drawn
        # again below it with the half line: the message is not glued to what is typed.
        raw = me.screen.decode("utf-8", "replace")
        before, _, after = raw.partition("700456: 끼어들기")
        assert "\x1b[J" in before[before.rindex("반") :], repr(raw)
        assert f"/msg {YOUNGHEE} 반" in after, repr(raw)
        me.type("가워요\r")
        got = younghee.wait_for(lambda e: e["event"] == "message")
        assert got["text"] == "반가워요"
        me.wait_text("반가워요 ✓")
        me.type("\x03")  # Ctrl-C
        assert me.proc.wait(10) == 0
    finally:
        me.close()
        younghee.kill()
