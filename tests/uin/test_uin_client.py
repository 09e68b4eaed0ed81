"""The terminal client's command language, its output, and its entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adapters.uin.client.commands import (
    CommandError,
    Intent,
    as_json,
    describe,
    parse_command,
)
from adapters.uin.client.messenger import Contact
from adapters.uin.codec import Status

from .script_client import REPO


@pytest.mark.parametrize(
    ("line", "intent"),
    [
        ("/msg 700123 안녕 하세요", Intent("msg", 700123, "안녕 하세요")),
        ("/m 5 hi", Intent("msg", 5, "hi")),
        ("/add 700456 친구해요", Intent("add", 700456, "친구해요")),
        ("/auth 700456", Intent("auth", 700456)),
        ("/deny 700456 싫어요", Intent("deny", 700456, "싫어요")),
        ("/remove 1", Intent("remove", 1)),
        ("/status away 점심", Intent("status", status=Status.AWAY, text="점심")),
        ("/STATUS Busy", Intent("status", status=Status.BUSY)),
        ("/contacts", Intent("contacts")),
        ("/search 영희", Intent("search", text="영희")),
        ("/typing 7 on", Intent("typing", 7, flag=True)),
        ("/quit", Intent("quit")),
        ("/help", Intent("help")),
        ("", None),
    ],
)
def test_commands_parse(line: str, intent: Intent | None) -> None:
    """Each documented command line parses to its intent."""
    assert parse_command(line) == intent


def test_plain_line_goes_to_the_current_chat() -> None:
    """Text without a slash is a message to the current chat, an error without one."""
    assert parse_command("잘 지내?", 700456) == Intent("msg", 700456, "잘 지내?")
    with pytest.raises(CommandError):
        parse_command("잘 지내?")


@pytest.mark.parametrize(
    "line", ["/msg abc hi", "/msg 5", "/status sleeping", "/nope", "/typing 5 maybe", "/add 0"]
)
def test_bad_commands_say_why(line: str) -> None:
    """Malformed commands raise CommandError with a usage hint."""
    with pytest.raises(CommandError):
        parse_command(line)


def test_events_print_readably_for_people() -> None:
    """Messages, presence and contact lists read naturally, with nicknames."""
    contacts = {700456: Contact(700456, "영희", Status.AWAY)}
    line = describe({"event": "message", "from": 700456, "text": "안녕", "time": 0}, contacts)
    assert line.endswith("영희 (700456): 안녕")
    assert describe(
        {"event": "presence", "uin": 700456, "status": "away", "text": "점심"}, contacts
    ) == ("* 영희 (700456) is away: 점심")
    listing = describe({"event": "contacts", "contacts": [contacts[700456].as_dict()]}, contacts)
    assert "영희" in listing and "away" in listing
    assert "/auth 5" in describe({"event": "auth_request", "from": 5, "text": ""}, contacts)


def test_script_events_are_one_json_object_per_line() -> None:
    """Scriptable output is compact JSON with Korean kept readable."""
    line = as_json({"event": "message", "text": "안녕"})
    assert "\n" not in line and json.loads(line)["text"] == "안녕" and "안녕" in line


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    full.pop("UIN_PASSWORD", None) if env is None else None
    return subprocess.run(
        [sys.executable, "-m", "adapters.uin.client", *args],
        capture_output=True,
        env=full,
        cwd=str(REPO),
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def test_python_dash_m_entry_point_shows_help() -> None:
    """``python -m adapters.uin.client --help`` works (the console script's target)."""
    result = _run("--help")
    assert result.returncode == 0 and b"--script" in result.stdout


def test_password_is_never_a_command_line_argument() -> None:
    """Without the password in the environment, script mode refuses to start."""
    result = _run("--uin", "700123", "--script")
    assert result.returncode == 2 and b"UIN_PASSWORD" in result.stderr


def test_client_gives_up_after_fifteen_unanswered_hellos() -> None:
    """Against silence the session resends HELLO with capped backoff, then fails TIMEOUT."""
    from adapters.uin.client.session import ClientSession, LoginFailed
    from adapters.uin.codec import ErrorCode

    session = ClientSession(700123, "pw")
    session.start(0.0)
    sends = len(session.datagrams_to_send(0.0))
    events: list[object] = []
    now = 0.0
    while not events:
        timer = session.get_timer()
        assert timer is not None
        now = timer
        events = list(session.handle_timer(now))
        sends += len(session.datagrams_to_send(now))
    assert events == [LoginFailed(ErrorCode.TIMEOUT)]
    assert sends == 15
    assert 20 < now < 40
