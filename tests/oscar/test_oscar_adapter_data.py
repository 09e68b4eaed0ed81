"""OSCAR feedbag extras (items the core does not model) live in the core's adapter
data: a restarted adapter, or another node, hands them back to the client."""

from __future__ import annotations

import json

from twisted.internet.testing import MemoryReactorClock

from adapters.oscar import session as M
from adapters.oscar import snac as S
from adapters.oscar.auth import CookieMint
from adapters.oscar.codec import Signoff, SnacEvent
from adapters.oscar.protocol import (
    EXTRAS_FIELD,
    OscarFactory,
    extras_from_data,
    extras_to_data,
)
from adapters.oscar.tlv import Tlv
from tests.oscar.test_oscar_glue import Wire, sign_in
from tests.oscar.test_oscar_glue import clock as clock  # fixture
from tests.oscar.test_oscar_glue import core as core  # fixture
from tests.oscar.test_oscar_glue import factory as factory  # fixture
from tests.support.fake_core import FakeCore, run_now

PD_INFO = S.FeedbagItem("", 0, 0x1234, 0x0004, (Tlv(0x00CA, b"\x04"), Tlv(0x00CB, b"\xff" * 4)))
PREFS = S.FeedbagItem("", 0, 0x2345, 0x0005, (Tlv(0x00C9, b"\x00\x00\x00\x01"),))
ICON = S.FeedbagItem("1", 0, 0x3456, 0x0014, (Tlv(0x00D5, bytes(range(18))),))


def restarted(core: FakeCore) -> OscarFactory:
    """A new adapter process (or another node) on the same core."""
    return OscarFactory(
        core,
        MemoryReactorClock(),
        CookieMint(b"k" * 32),
        M.SessionConfig(bos_address=""),
        bos_host="gw.example",
        run=run_now,
    )


def stored_items(bos: Wire) -> tuple[S.FeedbagItem, ...]:
    """What the server lists when the client asks for its feedbag again (13/04 -> 13/06)."""
    (reply,) = [b for b in bos.snac(S.FeedbagQuery()) if isinstance(b, S.FeedbagReply)]
    return reply.items


def test_extras_survive_a_restart(factory: OscarFactory, core: FakeCore) -> None:
    """Extras inserted, updated and deleted are stored as adapter data; a restarted
    adapter lists exactly what is left, bytes unchanged."""
    bos = sign_in(factory, "alice", "pw-a")
    assert bos.snac(S.FeedbagInsertItems((PD_INFO, PREFS, ICON))) == [S.FeedbagStatus((0, 0, 0))]
    updated = S.FeedbagItem("", 0, 0x2345, 0x0005, (Tlv(0x00C9, b"\x00\x00\x00\x07"),))
    assert bos.snac(S.FeedbagUpdateItems((updated,))) == [S.FeedbagStatus((0,))]
    assert bos.snac(S.FeedbagDeleteItems((ICON,))) == [S.FeedbagStatus((0,))]
    assert json.loads(core.data["oscar:alice"][EXTRAS_FIELD])  # JSON, as stored

    again = sign_in(restarted(core), "alice", "pw-a")
    assert set(stored_items(again)) >= {PD_INFO, updated}
    assert ICON not in stored_items(again)
    assert again.proto.session is not None and again.proto.session._feedbag is not None
    assert again.proto.session._feedbag.extras() == (PD_INFO, updated)


def test_deleting_the_last_extra_deletes_the_field(factory: OscarFactory, core: FakeCore) -> None:
    """No extras left: the adapter data field goes away instead of holding an empty list."""
    bos = sign_in(factory, "alice", "pw-a")
    bos.snac(S.FeedbagInsertItems((PREFS,)))
    assert EXTRAS_FIELD in core.data["oscar:alice"]
    bos.snac(S.FeedbagDeleteItems((PREFS,)))
    assert EXTRAS_FIELD not in core.data["oscar:alice"]


def test_unreadable_stored_extras_are_left_out(factory: OscarFactory, core: FakeCore) -> None:
    """A stored item that does not parse is skipped; the good ones and the login stand."""
    good = json.loads(extras_to_data((PD_INFO,)))[0]
    bad = [
        ["", 0, 70000, 4, []],  # item id out of range
        ["", 0, 1, 4, [[0xCA, "not base64!"]]],
        ["", 0, 1, True, []],
        "junk",
    ]
    core.data["oscar:alice"] = {EXTRAS_FIELD: json.dumps([good, *bad])}
    bos = sign_in(factory, "alice", "pw-a")
    assert bos.proto.session is not None and bos.proto.session.state is M.State.ONLINE
    assert PD_INFO in stored_items(bos)
    assert extras_from_data({EXTRAS_FIELD: "{"}) == ()
    assert extras_from_data({EXTRAS_FIELD: '{"a": 1}'}) == ()


def test_extras_round_trip_through_their_encoding() -> None:
    """Every field and TLV byte survives encoding to adapter data and back."""
    items = (PD_INFO, PREFS, ICON, S.FeedbagItem("ä name", 0xFFFF, 0xFFFF, 0xFFFF, ()))
    assert extras_from_data({EXTRAS_FIELD: extras_to_data(items)}) == items


def test_a_refused_save_signs_the_client_off(factory: OscarFactory, core: FakeCore) -> None:
    """Extras growing over the adapter data bounds: the edit was already acknowledged,
    so the client is signed off (its next login loads what is really stored)."""
    bos = sign_in(factory, "alice", "pw-a")
    bos.read()
    for batch in range(5):  # 4 x 3000 bytes per frame; the fifth cannot be stored
        items = tuple(
            S.FeedbagItem("", 0, 0x100 + 4 * batch + i, 0x0014, (Tlv(0x00D5, bytes(3000)),))
            for i in range(4)
        )
        events = bos.send(SnacEvent(S.Snac(S.FeedbagInsertItems(items), 1)))
        acked = [e.snac.body for e in events if isinstance(e, SnacEvent)]
        assert acked == [S.FeedbagStatus((0,) * 4)]  # the session took the items
        if bos.transport.disconnecting:
            break
    assert batch == 4 and isinstance(events[-1], Signoff)  # storage did not
    stored = extras_from_data(core.data["oscar:alice"])
    assert len(stored) == 16  # the last save that fitted
