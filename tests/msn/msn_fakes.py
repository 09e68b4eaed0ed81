"""MSN test helpers: the captured client vectors (tests/vectors/msn) and their bytes.

The core double the glue tests use is tests/support/fake_core.py (re-exported here
for tests/test_text.py).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.testing import MemoryReactorClock

from adapters.msn.protocol import MsnService
from adapters.msn.session import NsConfig
from adapters.msn.tokens import TokenSigner
from tests.support.fake_core import FakeCore as FakeCore
from tests.support.fake_core import run_now

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "msn"  # copies of shared captures


def service_for(
    core: FakeCore, clock: MemoryReactorClock | None = None, run: Any = run_now
) -> MsnService:
    """An MSN service over the core double on a fake clock (well past 0, so tickets
    and timers have room), with a fixed ticket key and switchboard address."""
    if clock is None:
        clock = MemoryReactorClock()
        clock.advance(1_000_000)
    signer = TokenSigner(b"t" * 32)
    return MsnService(
        core=core,
        clock=clock,
        run=run,
        signer=signer,
        ns_config=NsConfig(signer=signer, switchboard_address="127.0.0.1:1864"),
    )


@dataclass(frozen=True)
class VectorLine:
    side: str  # "C" or "S"
    channel: str  # "NS", "SB", "HTTP"
    text: str
    payload: bytes | None = None


def load_vector(name: str) -> list[VectorLine]:
    """The lines of a WIRE-NOTES capture; payload bytes attach to their command."""
    lines: list[VectorLine] = []
    for raw in (VECTORS / name).read_text(encoding="utf-8").splitlines():
        if raw.startswith("P "):
            payload = ast.literal_eval(raw[2:])
            assert isinstance(payload, bytes)
            last = lines.pop()
            lines.append(VectorLine(last.side, last.channel, last.text, payload))
        elif raw[:2] in ("C ", "S "):
            channel, _, text = raw[2:].partition(" ")
            lines.append(VectorLine(raw[0], channel.strip("[]"), text))
    return lines


def client_bytes(line: VectorLine, line_end: bytes = b"\r\n") -> bytes:
    """What the client put on the wire for a captured 'C' line."""
    return line.text.encode("utf-8") + line_end + (line.payload or b"")
