"""End to end: a real gateway process, real Redis, real sockets, our own OSCAR client;
and an independent check of the bytes with Wireshark's aim dissector."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.oscar import snac as S
from adapters.oscar.tlv import find
from adapters.oscar.translate import fragments_text
from tests.support.node import GatewayNode

from .oscar_client import OscarClient
from .pcap import write_pcap

pytestmark = pytest.mark.slow

OSCAR = {"factory": "adapters.oscar.adapter:OscarAdapter"}


def start(gateway_node: Callable[..., GatewayNode]) -> tuple[GatewayNode, int]:
    node = gateway_node(["oscar"], adapter_settings={"oscar": OSCAR})
    node.add_account("oscar", "123456", "icq-secret", "Ivan")
    node.add_account("oscar", "alice", "aim-secret", "Alice")
    return node, node.port("oscar")


def text_of(snac: S.Snac) -> str:
    body = snac.body
    assert isinstance(body, S.IcbmToClient)
    return fragments_text(find(body.tlvs, 2) or b"")


def chat(port: int) -> tuple[OscarClient, OscarClient]:
    """An ICQ user (MD5 variant 2) and an AIM user (variant 1) log in, list each other
    and exchange a message each way."""
    icq = OscarClient("127.0.0.1", port)
    icq.login("123456", "icq-secret", prehashed=False)
    aim = OscarClient("127.0.0.1", port)
    aim.login("Alice", "aim-secret", prehashed=True)
    assert icq.bos is not None and aim.bos is not None
    icq.add_buddy("alice")
    aim.add_buddy("123456")

    icq.send_im("alice", "hello from icq")
    got = aim.bos.expect_snac(S.IcbmToClient)
    assert isinstance(got.body, S.IcbmToClient) and got.body.sender.screen_name == "123456"
    assert text_of(got) == "<HTML><BODY>hello from icq</BODY></HTML>"

    aim.send_im("123456", "<HTML><BODY><B>hi</B> ICQ &amp; friends</BODY></HTML>")
    back = icq.bos.expect_snac(S.IcbmToClient)
    assert isinstance(back.body, S.IcbmToClient) and back.body.sender.screen_name == "alice"
    assert text_of(back) == "hi ICQ & friends"

    aim.bos.snac(S.IcbmClientEvent(bytes(8), 1, "123456", 2))
    typing = icq.bos.expect_snac(S.IcbmClientEvent)
    assert typing.body == S.IcbmClientEvent(bytes(8), 1, "alice", 2)
    return icq, aim


def test_icq_user_and_aim_user_chat(gateway_node: Callable[..., GatewayNode]) -> None:
    """ICQ 123456 and AIM 'Alice' log in to one gateway and chat, with typing."""
    _, port = start(gateway_node)
    icq, aim = chat(port)
    icq.close()
    aim.close()


def test_wrong_password_is_refused_end_to_end(gateway_node: Callable[..., GatewayNode]) -> None:
    """A bad password gets no cookie from the real gateway."""
    _, port = start(gateway_node)
    with pytest.raises(PermissionError):
        OscarClient("127.0.0.1", port).login("alice", "wrong")


def test_garbage_connection_does_not_disturb_others(
    gateway_node: Callable[..., GatewayNode],
) -> None:
    """Junk on one socket closes that socket only; a user logs in and chats after."""
    import socket

    _, port = start(gateway_node)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as junk:
        junk.recv(64)  # our hello
        junk.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := junk.recv(4096):
            data += chunk
        assert data[:2] == b"\x2a\x04"  # a channel-4 sign-off, then the close
    icq, aim = chat(port)
    icq.close()
    aim.close()


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_wireshark_aim_dissector_accepts_every_frame(
    gateway_node: Callable[..., GatewayNode], tmp_path: Path
) -> None:
    """The traffic of a whole chat, written as a pcap, decodes with tshark's aim
    dissector: no _ws.malformed anywhere and an aim layer on every data frame."""
    _, port = start(gateway_node)
    icq, aim = chat(port)
    icq.close()
    aim.close()
    capture = tmp_path / "oscar.pcap"
    write_pcap(capture, icq.recordings + aim.recordings)
    ports = {r.server_port for r in icq.recordings + aim.recordings}
    decode_as = [arg for p in sorted(ports) for arg in ("-d", f"tcp.port=={p},aim")]

    malformed = subprocess.run(
        ["tshark", "-n", "-r", str(capture), *decode_as, "-Y", "_ws.malformed"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert malformed.stdout.strip() == ""

    layers = subprocess.run(
        [
            "tshark",
            "-n",
            "-r",
            str(capture),
            *decode_as,
            "-Y",
            "tcp.len > 0",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "frame.protocols",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [line.split("\t") for line in layers.stdout.splitlines() if line.strip()]
    frames = sum(len(r.frames) for r in icq.recordings + aim.recordings)
    assert len(rows) == frames > 40
    without_aim = [number for number, protocols in rows if ":aim" not in protocols]
    assert without_aim == []
