"""One user per network for the cross-network acceptance tests, each driving a real
client codec over real sockets: ICQ/AIM (our OSCAR test client), MSN (our MSN test
client, notification server plus switchboards), UIN (the shipped terminal client as a
subprocess). Every wrapper offers the same few verbs so one scenario drives all three.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from adapters.msn.codec import Command, ErrorReply
from adapters.oscar import snac as S
from adapters.oscar.codec import SnacEvent, WireEvent
from adapters.oscar.tlv import Tlv, find
from adapters.oscar.translate import fragments_text
from tests.msn.msn_client import MsnClient, login, text
from tests.oscar.oscar_client import OscarClient
from tests.uin.script_client import ScriptClient

BOT = {"oscar": "10000", "uin": "10000", "msn": "gateway@gateway.invalid"}
WAIT = 15.0
_ALIAS = re.compile(r"add (\S+) to your contacts")


def _until(deadline: float) -> float:
    return max(0.01, deadline - time.monotonic())


# ---------------------------------------------------------------- OSCAR (ICQ and AIM)


class OscarUser:
    network = "oscar"

    def __init__(self, port: int, name: str, password: str, *, icq: bool) -> None:
        self.name = name
        self.client = OscarClient("127.0.0.1", port)
        self.bos = self.client.login(name, password, prehashed=not icq)
        self._next_item = 1
        self._group_made = False

    def add(self, native: str) -> None:
        """Put ``native`` on the server-stored buddy list (feedbag)."""
        items = []
        if not self._group_made:
            items.append(S.FeedbagItem("Buddies", 1, 0, 1))
            self._group_made = True
        self._next_item += 1
        items.append(S.FeedbagItem(native, 1, self._next_item, 0))
        self.bos.snac(S.FeedbagStartCluster())
        self.bos.snac(S.FeedbagInsertItems(tuple(items)))
        self.bos.expect_snac(S.FeedbagStatus)
        self.bos.snac(S.FeedbagEndCluster())

    def ask(self, native: str, reason: str = "") -> None:
        self.bos.snac(S.FeedbagRequestAuthToHost(native, reason))

    def grant(self, native: str) -> None:
        self.bos.snac(S.FeedbagRespondAuthToHost(native, 1, ""))

    def await_request(self, native: str) -> None:
        self.bos.expect(
            lambda e: (
                _body(e, S.FeedbagRequestAuthToClient) is not None
                and _body(e, S.FeedbagRequestAuthToClient).screen_name == native
            ),  # type: ignore[union-attr]
            WAIT,
        )

    def send(self, native: str, body: str) -> None:
        self.client.send_im(native, body)

    def send_expecting_error(self, native: str, body: str) -> int:
        self.client.send_im(native, body, ack=False)
        error = self.bos.expect(lambda e: _body(e, S.SnacError) is not None, WAIT)
        assert isinstance(error, SnacEvent) and isinstance(error.snac.body, S.SnacError)
        return int(error.snac.body.code)

    def receive(self, native: str) -> tuple[str, S.IcbmToClient]:
        event = self.bos.expect(
            lambda e: (
                (b := _body(e, S.IcbmToClient)) is not None and b.sender.screen_name == native
            ),  # type: ignore[union-attr]
            WAIT,
        )
        assert isinstance(event, SnacEvent) and isinstance(event.snac.body, S.IcbmToClient)
        body = event.snac.body
        shown = fragments_text(find(body.tlvs, 2) or b"")
        return shown, body

    def ask_bot(self, command: str) -> str:
        self.send(BOT["oscar"], command)
        reply, _ = self.receive(BOT["oscar"])
        return reply

    def await_online(self, native: str) -> None:
        self.bos.expect(lambda e: _names(e, S.BuddyArrived, native), WAIT)

    def await_offline(self, native: str) -> None:
        self.bos.expect(lambda e: _names(e, S.BuddyDeparted, native), WAIT)

    def _drain(self, within: float) -> None:
        """Read whatever arrives within ``within`` seconds into ``pending``."""
        deadline = time.monotonic() + within
        with contextlib.suppress(TimeoutError, socket.timeout):
            while time.monotonic() < deadline:
                self.bos._read_more(deadline)

    def presence_seen(self, native: str, within: float = 1.0) -> list[str]:
        """Presence SNACs about ``native`` that arrive within ``within`` seconds."""
        self._drain(within)
        return [
            type(e.snac.body).__name__
            for e in self.bos.pending
            if _names(e, S.BuddyArrived, native) or _names(e, S.BuddyDeparted, native)
        ]

    def messages_from(self, native: str, within: float = 1.0) -> list[str]:
        self._drain(within)
        found = []
        for e in self.bos.pending:
            b = _body(e, S.IcbmToClient)
            if isinstance(b, S.IcbmToClient) and b.sender.screen_name == native:
                found.append(fragments_text(find(b.tlvs, 2) or b""))
        return found

    def close(self) -> None:
        self.client.close()


def _body(event: WireEvent, cls: type[S.SnacBody]) -> S.SnacBody | None:
    if isinstance(event, SnacEvent) and isinstance(event.snac.body, cls):
        return event.snac.body
    return None


def _names(event: WireEvent, cls: type[S.UsersBody], native: str) -> bool:
    body = _body(event, cls)
    return isinstance(body, S.UsersBody) and any(
        u.screen_name.replace(" ", "").lower() == native.lower() for u in body.users
    )


def offline_time(body: S.IcbmToClient) -> int | None:
    """The original time an offline message carries (TLV 0x16), if any."""
    raw = find(body.tlvs, 0x16)
    return None if raw is None else int.from_bytes(raw, "big")


# ---------------------------------------------------------------- MSN


class Lines:
    """Reads MSN commands, handing out the one asked for and keeping every other."""

    def __init__(self, client: MsnClient) -> None:
        self.client = client

    def take(self, match: Callable[[Command], bool], timeout: float = WAIT) -> Command:
        deadline = time.monotonic() + timeout
        while True:
            for i, frame in enumerate(self.client.frames):
                if isinstance(frame, Command) and match(frame):
                    del self.client.frames[i]
                    return frame
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing matched in {self.client.frames}"[:2000])
            self.client.sock.settimeout(_until(deadline))
            with contextlib.suppress(TimeoutError, socket.timeout):
                data = self.client.sock.recv(65536)
                if not data:
                    raise ConnectionError("server closed the connection")
                self.client.frames += self.client.codec.receive_data(data)

    def drain(self, within: float) -> list[Command]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.client.sock.settimeout(_until(deadline))
            try:
                data = self.client.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            self.client.frames += self.client.codec.receive_data(data)
        return [f for f in self.client.frames if isinstance(f, Command)]


class MsnUser:
    network = "msn"

    def __init__(self, node: Any, email: str, password: str) -> None:
        self.email = email
        self.ns_port, self.http_port = node.port("msn", 0), node.port("msn", 2)
        self.ns = login(self.ns_port, self.http_port, email, password)
        self.lines = Lines(self.ns)
        self.boards: dict[str, tuple[MsnClient, Lines]] = {}

    def add(self, handle: str) -> None:
        for list_name in ("FL", "AL"):
            args = (list_name, handle, handle) + (("0",) if list_name == "FL" else ())
            trid = self.ns.send("ADD", *args)
            self.lines.take(lambda c, t=trid: (c.trid == t and c.verb in ("ADD",)) or _err(c, t))

    def grant(self, handle: str) -> None:
        trid = self.ns.send("ADD", "AL", handle, handle)
        self.lines.take(lambda c, t=trid: c.trid == t)

    def await_request(self, handle: str) -> None:
        self.lines.take(lambda c: c.verb == "ADD" and "RL" in c.args and handle in c.args)

    def _board(self, handle: str) -> tuple[MsnClient, Lines]:
        if handle in self.boards:
            return self.boards[handle]
        sb, sb_lines, trid = self._call(handle)
        sb_lines.take(lambda c: c.verb == "CAL" and c.trid == trid)
        sb_lines.take(lambda c: c.verb == "JOI" and c.args[0] == handle)
        self.boards[handle] = (sb, sb_lines)
        return sb, sb_lines

    def _call(self, handle: str) -> tuple[MsnClient, Lines, int]:
        """A new switchboard (XFR SB, USR) and a CAL of ``handle``: its trid."""
        trid = self.ns.send("XFR", "SB")
        xfr = self.lines.take(lambda c: c.verb == "XFR" and c.trid == trid)
        host, _, port = xfr.args[1].partition(":")
        sb = MsnClient(int(port), host)
        lines = Lines(sb)
        sb.send("USR", self.email, xfr.args[3])
        lines.take(lambda c: c.verb == "USR")
        return sb, lines, sb.send("CAL", handle)

    def call_fails(self, handle: str) -> str:
        """CAL someone; the error code the switchboard answers with."""
        sb, lines, trid = self._call(handle)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for frame in sb.frames:
                if isinstance(frame, ErrorReply) and frame.trid == trid:
                    sb.close()
                    return str(frame.code)
                if isinstance(frame, Command) and frame.trid == trid:
                    raise AssertionError(f"CAL {handle} was accepted: {frame}")
            lines.drain(0.1)
        raise TimeoutError(f"no answer to CAL {handle}")

    def send(self, handle: str, body: str) -> None:
        sb, lines = self._board(handle)
        trid = sb.send("MSG", "A", payload=text(body))
        lines.take(lambda c: c.trid == trid and c.verb in ("ACK", "NAK"))

    def _answer_rings(self) -> None:
        while True:
            try:
                rng = self.lines.take(lambda c: c.verb == "RNG", 0.05)
            except TimeoutError:
                return
            host, _, port = rng.args[1].partition(":")
            sb = MsnClient(int(port), host)
            lines = Lines(sb)
            sb.send("ANS", self.email, rng.args[3], rng.args[0])
            lines.take(lambda c: c.verb in ("ANS", "IRO") and c.trid is not None)
            self.boards[rng.args[4]] = (sb, lines)

    def receive(self, handle: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            self._answer_rings()
            for _sb, lines in list(self.boards.values()):
                try:
                    msg = lines.take(
                        lambda c: (
                            c.verb == "MSG"
                            and c.args[0] == handle
                            and b"text/plain" in (c.payload or b"")
                        ),
                        0.05,
                    )
                except TimeoutError:
                    continue
                payload = msg.payload or b""
                return payload.split(b"\r\n\r\n", 1)[1].decode("utf-8")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no message from {handle}")
            self.lines.drain(0.1)  # wait a little, keeping what the server sends

    def ask_bot(self, command: str) -> str:
        self.send(BOT["msn"], command)
        return self.receive(BOT["msn"])

    def await_online(self, handle: str) -> None:
        self.lines.take(lambda c: c.verb in ("NLN", "ILN") and handle in c.args)

    def await_offline(self, handle: str) -> None:
        self.lines.take(lambda c: c.verb == "FLN" and handle in c.args)

    def presence_seen(self, handle: str, within: float = 1.0) -> list[str]:
        return [
            c.verb
            for c in self.lines.drain(within)
            if c.verb in ("NLN", "ILN", "FLN") and handle in c.args
        ]

    def messages_from(self, handle: str, within: float = 1.0) -> list[str]:
        found = []
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                found.append(self.receive(handle, timeout=0.2))
        return found

    def close(self) -> None:
        for sb, _ in self.boards.values():
            sb.close()
        with contextlib.suppress(OSError):
            self.ns.send("OUT")
        self.ns.close()


def _err(command: Command, trid: int) -> bool:
    if command.trid == trid and command.verb.isdigit():
        raise AssertionError(f"server refused with {command}")
    return False


# ---------------------------------------------------------------- UIN


class UinUser:
    network = "uin"

    def __init__(self, port: int, uin: int, password: str) -> None:
        self.uin = uin
        self.client = ScriptClient(port, uin, password)
        self.client.kind("logged_in")

    def add(self, native: str, note: str = "") -> None:
        self.client.send(f"/add {native} {note}".rstrip())

    def grant(self, native: str) -> None:
        self.client.send(f"/auth {native}")

    def await_request(self, native: str) -> None:
        self.client.wait_for(lambda e: e["event"] == "auth_request" and e["from"] == int(native))

    def send(self, native: str, body: str) -> None:
        before = len(self.client.of_kind("sent"))
        self.client.send(f"/msg {native} {body}")
        self.client.wait_for(
            lambda e: e["event"] == "sent" and len(self.client.of_kind("sent")) > before
        )

    def send_expecting_error(self, native: str, body: str) -> str:
        self.client.send(f"/msg {native} {body}")
        failed = self.client.wait_for(
            lambda e: e["event"] == "message_failed" and not e.get("_taken")
        )
        failed["_taken"] = True
        return str(failed.get("error") or failed.get("reason"))

    def receive(self, native: str, timeout: float = WAIT) -> dict[str, Any]:
        event = self.client.wait_for(
            lambda e: e["event"] == "message" and e["from"] == int(native) and not e.get("_taken"),
            timeout,
        )
        event["_taken"] = True
        return dict(event)

    def ask_bot(self, command: str) -> str:
        self.client.send(f"/msg {BOT['uin']} {command}")
        return str(self.receive(BOT["uin"])["text"])

    def await_online(self, native: str) -> None:
        self.client.wait_for(
            lambda e: (
                e["event"] == "presence" and e["uin"] == int(native) and e["status"] != "offline"
            )
        )

    def await_offline(self, native: str) -> None:
        self.client.wait_for(
            lambda e: (
                e["event"] == "presence" and e["uin"] == int(native) and e["status"] == "offline"
            )
        )

    def _drain(self, within: float) -> None:
        """Wait ``within`` seconds, then move what the client printed into ``seen``."""
        time.sleep(within)
        with contextlib.suppress(AssertionError):
            self.client.wait_for(lambda e: False, 0.01)

    def presence_seen(self, native: str, within: float = 1.0) -> list[str]:
        self._drain(within)
        return [
            str(e["status"])
            for e in self.client.seen
            if e["event"] == "presence" and e["uin"] == int(native)
        ]

    def messages_from(self, native: str, within: float = 1.0) -> list[str]:
        self._drain(within)
        return [
            str(e["text"])
            for e in self.client.seen
            if e["event"] == "message" and e["from"] == int(native) and not e.get("_taken")
        ]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.quit()
        self.client.kill()


def alias_from(reply: str) -> str:
    """The alias the gateway bot told us to add."""
    match = _ALIAS.search(reply)
    assert match is not None, f"the bot gave no alias: {reply!r}"
    return match.group(1)


__all__ = [
    "BOT",
    "MsnUser",
    "OscarUser",
    "Tlv",
    "UinUser",
    "alias_from",
    "offline_time",
]
