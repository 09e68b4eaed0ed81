"""What a person (or a script) types, and how events look: pure functions shared by
the interactive and the scriptable mode of the terminal client."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.uin.client.messenger import Contact, UiEvent
from adapters.uin.codec import Status

HELP = """\
commands:
  /msg <uin> <text>        send a message (also: /m) and make <uin> the current chat
  /r <text>                reply to whoever wrote last (also: /reply)
  <text>                   a plain line goes to the current chat (shown in the prompt),
                           or, before you chose one, to whoever wrote last
  /chat <uin>              make <uin> the current chat
  /add <uin> [text]        add a contact and ask for authorization
  /auth <uin>              authorize <uin> (accept their request)
  /deny <uin> [text]       refuse <uin>'s request
  /remove <uin>            remove a contact
  /status <online|away|busy|invisible> [text]   change your status
  /contacts                show contacts with presence
  /search <uin or nickname>
  /typing <uin> on|off
  /help                    this text
  /quit                    log out and leave (also Ctrl-C, or Ctrl-D on an empty line)
your messages echo as "[12:34] → name (uin): text ✓" once the server has them
(✓ delivered to the gateway, ✗ not delivered, with the reason)."""

STATUS_NAMES = {s.name.lower(): s for s in Status if s is not Status.OFFLINE}


class CommandError(ValueError):
    """A line that is not a valid command (the message says why)."""


@dataclass(frozen=True, slots=True)
class Intent:
    verb: str
    uin: int = 0
    text: str = ""
    status: Status = Status.ONLINE
    flag: bool = False


def _uin(word: str) -> int:
    if not word.isdigit() or not 1 <= int(word) <= 0xFFFFFFFF:
        raise CommandError(f"not a UIN: {word!r}")
    return int(word)


def parse_command(line: str, current_chat: int | None = None) -> Intent | None:
    """The intent of one input line; None for an empty line."""
    line = line.strip()
    if not line:
        return None
    if not line.startswith("/"):
        if current_chat is None:
            raise CommandError("no current chat: use /msg <uin> <text> or /chat <uin>")
        return Intent("msg", current_chat, line)
    head, _, rest = line[1:].partition(" ")
    verb = head.lower()
    words = rest.split(maxsplit=1)
    first = words[0] if words else ""
    tail = words[1] if len(words) > 1 else ""
    if verb in ("msg", "m"):
        if not tail:
            raise CommandError("usage: /msg <uin> <text>")
        return Intent("msg", _uin(first), tail)
    if verb in ("r", "reply"):
        if not rest.strip():
            raise CommandError("usage: /r <text>")
        return Intent("reply", text=rest.strip())
    if verb in ("chat", "add", "remove", "auth", "deny", "typing"):
        if not first:
            raise CommandError(f"usage: /{verb} <uin>")
        uin = _uin(first)
        if verb == "typing":
            if tail not in ("on", "off"):
                raise CommandError("usage: /typing <uin> on|off")
            return Intent("typing", uin, flag=tail == "on")
        return Intent(verb, uin, tail)
    if verb == "status":
        if first.lower() not in STATUS_NAMES:
            raise CommandError("usage: /status <online|away|busy|invisible> [text]")
        return Intent("status", status=STATUS_NAMES[first.lower()], text=tail)
    if verb == "search":
        if not rest.strip():
            raise CommandError("usage: /search <uin or nickname>")
        return Intent("search", text=rest.strip())
    if verb in ("contacts", "help", "quit"):
        return Intent(verb)
    raise CommandError(f"unknown command /{verb} (try /help)")


def as_json(event: UiEvent) -> str:
    """One event as one line of JSON (the scriptable mode's output)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _who(uin: object, contacts: dict[int, Contact], names: Mapping[int, str] | None = None) -> str:
    """A UIN with its nickname beside it, when one is known: ``영희 (700456)``."""
    if not isinstance(uin, int):
        return str(uin)
    contact = contacts.get(uin)
    nickname = (contact.nickname if contact else "") or (names or {}).get(uin, "")
    return f"{nickname} ({uin})" if nickname else str(uin)


def _clock(seconds: object) -> str:
    stamp = seconds if isinstance(seconds, int) and seconds > 0 else int(time.time())
    return time.strftime("%H:%M", time.localtime(stamp))


def describe(
    event: UiEvent, contacts: dict[int, Contact], names: Mapping[int, str] | None = None
) -> str:
    """One event as a line (or a few) for a person at a terminal."""
    kind = event.get("event")

    def who(uin: object) -> str:
        return _who(uin, contacts, names)

    if kind == "message":
        offline = " (sent while you were offline)" if event.get("offline") else ""
        return f"[{_clock(event.get('time'))}] {who(event['from'])}: {event['text']}{offline}"
    if kind == "delivered":
        return f"[{_clock(event.get('time'))}] → {who(event['to'])}: {event['text']} ✓"
    if kind == "message_failed" and "text" in event:
        return (
            f"[{_clock(event.get('time'))}] → {who(event['to'])}: {event['text']}"
            f" ✗ not delivered: {event['error']}"
        )
    if kind == "nickname":
        return f"* {event['uin']} is {event['nickname']}"
    if kind == "reconnecting":
        return f"* connection lost; logging in again in {event['seconds']} s"
    if kind == "presence":
        text = f": {event['text']}" if event.get("text") else ""
        return f"* {who(event['uin'])} is {event['status']}{text}"
    if kind == "contacts":
        rows = event.get("contacts")
        if not isinstance(rows, list) or not rows:
            return "(no contacts; add one with /add <uin>)"
        lines = ["contacts:"]
        for row in rows:
            status = str(row["status"]) + (" (awaiting authorization)" if row["pending"] else "")
            text = f" - {row['status_text']}" if row["status_text"] else ""
            name = str(row["nickname"] or "?")
            lines.append(f"  {row['uin']:>10}  {name:<16} {status}{text}")
        return "\n".join(lines)
    if kind == "auth_request":
        text = f' ("{event["text"]}")' if event.get("text") else ""
        asker = event["from"]
        return f"* {asker} wants to add you{text}: /auth {asker} to accept, /deny {asker} to refuse"
    if kind == "auth_reply":
        verdict = "accepted" if event.get("granted") else "refused"
        return f"* {who(event['from'])} {verdict} your request"
    if kind == "typing":
        doing = "is typing..." if event.get("active") else "stopped typing"
        return f"* {who(event['from'])} {doing}"
    if kind == "message_failed":
        return f"! message {event['msg_id']} to {who(event['to'])} failed: {event['error']}"
    if kind == "search_result":
        rows = event.get("results")
        if not isinstance(rows, list) or not rows:
            return "search: nothing found"
        return "search:\n" + "\n".join(f"  {r['uin']:>10}  {r['nickname']}" for r in rows)
    if kind == "logged_in":
        return f"* logged in as {event['uin']} ({event['charset']}); /help for commands"
    if kind == "login_failed":
        return f"! login failed: {event['error']}"
    if kind == "disconnected":
        return f"* disconnected: {event['reason']}"
    if kind == "registered":
        return f"* registered: your new UIN is {event['uin']}"
    if kind == "registration_failed":
        return f"! registration failed: {event['error']}"
    if kind == "error":
        return f"! {event['text']}"
    if kind == "help":
        return HELP
    if kind == "sent":
        return ""
    return as_json(event)
