"""The switchboard room registry: finding the room for a (local user, peer) pair without
scanning every room, and forgetting rooms that closed."""

from __future__ import annotations

from adapters.msn.switchboard import INVITE_TIMEOUT, Rooms


def test_find_picks_the_newest_room_the_peer_is_in() -> None:
    rooms = Rooms()
    old = rooms.open("alice@example.com", "Alice", "conn-a1")
    rooms.call(old, "bob@example.com", "Bob")
    new = rooms.open("alice@example.com", "Alice", "conn-a2")
    rooms.call(new, "bob@example.com", "Bob")
    assert rooms.find("alice@example.com", "bob@example.com") is new
    assert rooms.find("alice@example.com", "carol@example.com") is None
    assert rooms.find("dave@example.com", "bob@example.com") is None


def test_a_room_left_or_expired_is_forgotten() -> None:
    rooms = Rooms()
    room = rooms.open("alice@example.com", "Alice", "conn-a")
    rooms.call(room, "bob@example.com", "Bob")
    rooms.leave(room, "alice@example.com")  # the last connection: the room closes
    assert rooms.find("alice@example.com", "bob@example.com") is None
    assert len(rooms) == 0 and rooms._member_of == {}

    rung = rooms.open_for("carol@example.com", "bob@example.com", "Bob", now=0.0)
    assert rooms.find("carol@example.com", "bob@example.com") is rung  # rung, not yet in
    rooms.expire(now=INVITE_TIMEOUT + 1)
    assert rooms.find("carol@example.com", "bob@example.com") is None
    assert len(rooms) == 0 and rooms._member_of == {}


def test_many_rooms_do_not_slow_finding_one() -> None:
    """Only the peer's rooms are looked at: 10,000 other rooms are never visited."""
    rooms = Rooms()
    for i in range(10_000):
        other = rooms.open(f"user{i}@example.com", "U", f"conn{i}")
        rooms.call(other, f"peer{i}@example.com", "P")
    mine = rooms.open("alice@example.com", "Alice", "conn-a")
    rooms.call(mine, "bob@example.com", "Bob")
    assert rooms.find("alice@example.com", "bob@example.com") is mine
    assert list(rooms._member_of["bob@example.com"]) == [mine.room_id]
