"""MSN settings the core does not model (GTC, groups, renamed groups' old ids) live in
the core's adapter data: they outlive the service, stay within its bounds, and a
connection's list edits run in order."""

from __future__ import annotations

import json
from collections.abc import Coroutine, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock

from adapters.contract import MAX_ADAPTER_DATA_BYTES
from adapters.msn import lists
from adapters.msn.codec import Command, ErrorReply
from adapters.msn.protocol import (
    CONTACT_PROPERTIES_FIELD,
    ERR_TOO_MANY_GROUPS,
    GROUP_ALIASES_FIELD,
    GROUPS_FIELD,
    MAX_CONTACT_PROPERTIES,
    MAX_GROUP_ALIASES,
    MsnService,
    group_changes,
    property_changes,
    settings_from_data,
)
from tests.msn.msn_fakes import service_for
from tests.msn.test_msn_glue import login
from tests.msn.test_msn_glue import world as world  # fixture
from tests.support.fake_core import FakeCore, run_now

ALICE = "msn:alice@example.com"
World = tuple[FakeCore, MsnService, MemoryReactorClock]


def restarted(core: FakeCore, run: Any = run_now) -> MsnService:
    """A fresh MSN service (a restarted process, or another node) on the same core."""
    clock = MemoryReactorClock()
    clock.advance(2_000_000)
    return service_for(core, clock, run)


def commands(frames: Sequence[object], verb: str) -> list[Command]:
    return [f for f in frames if isinstance(f, Command) and f.verb == verb]


def test_groups_and_gtc_survive_a_restart(world: World) -> None:
    """A group added, a group renamed and GTC N are listed by SYN on a new service, and
    the renamed group's old id still names it there."""
    core, service, _ = world
    alice = login(service, "alice", version=10, online=False)
    alice.read()
    alice.send("ADG", "Friends")
    alice.send("ADG", "Work")
    (work,) = [c for c in commands(alice.read(), "ADG") if c.args[0] == "Work"]
    alice.send("REG", work.args[1], "Job")
    alice.send("GTC", "N")
    assert [f.verb for f in alice.read() if isinstance(f, Command)] == ["REG", "GTC"]
    assert json.loads(core.data[ALICE][GROUPS_FIELD]) == ["Friends", "Job"]

    again = login(restarted(core), "alice", version=10, online=False)
    again.read()
    again.send("SYN", "0", "0")
    frames = again.read()
    assert Command("GTC", None, ("N",)) in frames
    assert [c.args[0] for c in commands(frames, "LSG")] == ["Friends", "Job"]
    trid = again.send("RMG", work.args[1])  # the id from before the rename
    assert again.read() == [Command("RMG", trid, (work.args[1],))]
    assert json.loads(core.data[ALICE][GROUPS_FIELD]) == ["Friends"]
    assert GROUP_ALIASES_FIELD not in core.data[ALICE]  # the renamed group is gone


def test_group_edit_over_the_data_bound_is_error_223(world: World) -> None:
    """When the stored groups would outgrow the adapter data, ADG is answered 223 and
    nothing changes."""
    core, service, _ = world
    many = [f"group {i:04d} " + "x" * 48 for i in range(900)]  # about 56 KiB of names
    stored = json.dumps(many, separators=(",", ":"))
    room = MAX_ADAPTER_DATA_BYTES - len(GROUPS_FIELD) - len(stored) - len("pad")
    core.data[ALICE] = {GROUPS_FIELD: stored, "pad": "p" * (room - 20)}  # 20 bytes free
    before = dict(core.data[ALICE])
    alice = login(service, "alice", version=10, online=False)
    alice.read()
    trid = alice.send("ADG", "y" * 61)
    assert alice.read() == [ErrorReply(ERR_TOO_MANY_GROUPS, trid)]
    assert core.data[ALICE] == before
    alice.send("SYN", "0", "0")
    assert len(commands(alice.read(), "LSG")) == 900


def test_unreadable_stored_settings_fall_back_to_defaults(world: World) -> None:
    """Stored settings that do not parse leave the defaults; SYN still answers in full."""
    core, service, _ = world
    core.data[ALICE] = {
        "gtc": "X",
        GROUPS_FIELD: '["Good", 7, "", "' + "n" * 62 + '", "Good"]',
        GROUP_ALIASES_FIELD: "{not json",
    }
    alice = login(service, "alice", version=8)
    alice.send("SYN", "0")
    frames = alice.read()
    assert Command("GTC", None, ("A",)) in frames
    assert [c.args[1] for c in commands(frames, "LSG")] == ["Contacts", "Good"]


def test_settings_from_data_reads_only_well_formed_values() -> None:
    """Each field is checked: GTC A/N, group names 1-61 chars once, aliases str -> str."""
    settings = settings_from_data(
        {"gtc": "N", GROUPS_FIELD: '["a", "Contacts", "a", "b"]', GROUP_ALIASES_FIELD: '{"1": 2}'}
    )
    assert (settings.gtc, settings.extra_groups, settings.group_aliases) == ("N", ["a", "b"], {})


def test_renames_keep_a_bounded_number_of_old_ids() -> None:
    """Old ids are kept only for groups that exist, and only the newest ones."""
    settings = lists.OwnerSettings(
        extra_groups=["g"], group_aliases={f"id{i}": "g" for i in range(MAX_GROUP_ALIASES)}
    )
    outcome = lists.EditOutcome(groups=("Contacts", "h"), group_aliases=(("new", "h"),))
    changes = group_changes(settings, outcome)
    assert changes == {GROUPS_FIELD: '["h"]', GROUP_ALIASES_FIELD: '{"new":"h"}'}
    settings.group_aliases["stale"] = "gone"
    outcome = lists.EditOutcome(groups=("Contacts", "g"), group_aliases=(("x", "g"),))
    kept = json.loads(group_changes(settings, outcome)[GROUP_ALIASES_FIELD] or "{}")
    assert len(kept) == MAX_GROUP_ALIASES and "x" in kept and "stale" not in kept
    assert group_changes(settings, lists.EditOutcome(put=())) == {}


class HeldRunner:
    """Runs core calls at once, or, while ``hold`` is set, only when ``step`` says so."""

    def __init__(self) -> None:
        self.hold = False
        self.pending: list[tuple[Coroutine[Any, Any, Any], Deferred[Any]]] = []

    def __call__(self, coro: Coroutine[Any, Any, Any]) -> Deferred[Any]:
        if not self.hold:
            return run_now(coro)
        d: Deferred[Any] = Deferred()
        self.pending.append((coro, d))
        return d

    def step(self) -> None:
        coro, d = self.pending.pop(0)
        run_now(coro).chainDeferred(d)


def test_list_edits_of_a_connection_run_one_after_another(world: World) -> None:
    """ADG then, in the same segment, ADD into that group: the ADD starts only after the
    ADG was stored, so it finds the group."""
    core, _, _ = world
    runner = HeldRunner()
    service = restarted(core, runner)
    alice = login(service, "alice", version=8)
    alice.read()
    runner.hold = True
    group = str(lists.group_number("Friends"))
    adg = alice.send("ADG", "Friends", "0")
    add = alice.send("ADD", "FL", "bob@example.com", "Bob", group)
    assert len(runner.pending) == 1  # the ADD waits for the ADG
    while runner.pending:
        runner.step()
    frames = alice.read()
    assert [(c.verb, c.trid) for c in frames if isinstance(c, Command)] == [
        ("ADG", adg),
        ("ADD", add),
    ]
    (entry,) = core.lists[ALICE].values()
    assert entry.group == "Friends" and entry.subscribed


def test_prp_and_sbp_values_survive_a_restart(world: World) -> None:
    """PRP phones and SBP contact properties are adapter data: SYN on a new service gives
    them back (PRP after BLP, BPR after the contact's LST); SBP MFN is kept, not shown."""
    core, service, _ = world
    core.befriend(ALICE, "msn:bob@example.com")
    alice = login(service, "alice", version=12, online=False)
    alice.read()
    guid = lists.contact_guid("msn:bob@example.com")
    alice.send("PRP", "PHH", "555")
    alice.send("SBP", guid, "PHW", "777")
    alice.send("SBP", guid, "MFN", "Bobby")
    assert [f.verb for f in alice.read() if isinstance(f, Command)] == ["PRP", "SBP", "SBP"]
    again = login(restarted(core), "alice", version=12, online=False)
    again.read()
    again.send("SYN", "0", "0")
    frames = again.read()
    assert Command("PRP", None, ("PHH", "555")) in frames
    verbs = [f.verb for f in frames if isinstance(f, Command)]
    assert verbs[verbs.index("LST") + 1] == "BPR"
    assert Command("BPR", None, ("PHW", "777")) in frames
    (lst,) = commands(frames, "LST")
    assert "F=Bob" in lst.args  # Bob's own name, not the cached "Bobby"
    assert json.loads(core.data[ALICE][CONTACT_PROPERTIES_FIELD])[guid]["MFN"] == "Bobby"


def test_sbp_data_is_bounded_to_the_newest_contacts() -> None:
    """SBP keeps the newest MAX_CONTACT_PROPERTIES contacts: a client cannot grow it."""
    settings = lists.OwnerSettings()
    for i in range(MAX_CONTACT_PROPERTIES + 5):
        changes = property_changes(settings, f"c{i}", "MFN", "x")
        settings = settings_from_data({k: v for k, v in changes.items() if v is not None})
    kept = settings.contact_properties
    assert len(kept) == MAX_CONTACT_PROPERTIES and "c0" not in kept and f"c{i}" in kept
