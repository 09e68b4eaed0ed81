"""The gateway bot: a contact in every network that a user adds in their own client and
talks to (docs/adr/0005-gateway-bot.md).

Theory of operation. The core owns the bot's accounts and hands this module every
``Message`` written to one of them; what comes back is the reply text. Parsing and the
reply wording are pure (:func:`parse_command`, :func:`help_text`, :func:`found_line`);
:func:`answer` looks things up through :class:`BotCore`, a small read-only view of the
core, so it never touches Redis or the reactor itself.

Commands (keyword case-insensitive, body trimmed, any other text -> help):
- ``help`` / ``?``: the commands and the network names.
- ``find <network> <text>``: an exact id on that network, else a search of display
  names and ids; each hit with how the sender adds it in their own network.
- ``whois <id>`` (read in the sender's own namespace) or ``whois <network> <id>``: who
  is behind an id, and the other addresses of the same person.

Replies use ASCII punctuation only: they must read the same in every charset a
legacy client may have negotiated (CP949, ISO-8859-1, UCS-2, UTF-8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.aliases import display_with_network
from schema.addresses import AddressError, make_address, split_address
from schema.records import AccountInfo

NETWORK_NAMES: dict[str, str] = {
    "icq": "oscar",
    "aim": "oscar",
    "oscar": "oscar",
    "msn": "msn",
    "uin": "uin",
}
"""What a user may type as a network -> the network it names."""

STATUS_TEXT = "type help"
"""The bot's status message, shown to everyone: it is always online."""
FIND_LIMIT = 10
_ECHO_CHARS = 40

NOBODY_FOUND = "nobody found"
NOBODY_HAS_THAT_ID = "nobody has that id"
ITS_ME = "That is me, the gateway. Type help to see what I can do."
TRY_HELP = "Type help to see the commands."
FAILED = "Sorry, that did not work. Please try again later."


# ---- commands (pure)


@dataclass(frozen=True, slots=True)
class HelpCommand:
    """``help``, or text that is no command (``unknown`` holds it, shortened)."""

    unknown: str = ""


@dataclass(frozen=True, slots=True)
class FindCommand:
    network: str
    text: str


@dataclass(frozen=True, slots=True)
class WhoisCommand:
    native: str
    network: str | None = None
    """None: the id is read in the sender's own network."""


@dataclass(frozen=True, slots=True)
class UsageProblem:
    """A known command used wrongly; ``message`` says how to use it."""

    message: str


Command = HelpCommand | FindCommand | WhoisCommand | UsageProblem

FIND_USAGE = "Usage: find <network> <name or id>, for example: find msn bob@example.com"
WHOIS_USAGE = "Usage: whois <id>, or whois <network> <id>"


def _shown(text: str) -> str:
    """User text quoted back in a reply: printable, one line, short."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    flat = " ".join(flat.split())
    return flat if len(flat) <= _ECHO_CHARS else flat[: _ECHO_CHARS - 3] + "..."


def _network_names() -> str:
    return ", ".join(NETWORK_NAMES)


def parse_command(body: str) -> Command:
    words = body.split(None, 1)
    if not words:
        return HelpCommand()
    keyword = words[0].casefold().lstrip("/!")
    rest = words[1].strip() if len(words) > 1 else ""
    if keyword in ("help", "?", ""):
        return HelpCommand()
    if keyword == "find":
        parts = rest.split(None, 1)
        if len(parts) < 2:
            return UsageProblem(FIND_USAGE)
        network = NETWORK_NAMES.get(parts[0].casefold())
        if network is None:
            return UsageProblem(
                f'Unknown network "{_shown(parts[0])}": use one of {_network_names()}.'
            )
        return FindCommand(network, parts[1].strip())
    if keyword == "whois":
        if not rest:
            return UsageProblem(WHOIS_USAGE)
        parts = rest.split(None, 1)
        network = NETWORK_NAMES.get(parts[0].casefold())
        if network is not None and len(parts) == 2:
            return WhoisCommand(parts[1].strip(), network)
        return WhoisCommand(rest)
    return HelpCommand(unknown=_shown(body.strip()))


# ---- reply text (pure)


def help_text(unknown: str = "") -> str:
    lines = [f'Unknown command "{unknown}".'] if unknown else []
    lines += [
        "I am the gateway. Commands:",
        "find <network> <name or id> - look someone up, e.g. find msn bob@example.com",
        "whois <id> - who is behind an id in your list (or: whois <network> <id>)",
        "help - this text",
        f"Networks: {_network_names()} (icq and aim are both oscar).",
    ]
    return "\n".join(lines)


def spelled(address: str) -> str:
    """An address as its own network shows it: ``icq 12345``, ``aim coolkid``,
    ``msn bob@example.com``, ``uin 700123``."""
    network, native = split_address(address)
    if network == "oscar":
        return f"{'icq' if native.isdigit() else 'aim'} {native}"
    return f"{network} {native}"


def found_line(info: AccountInfo, alias: str) -> str:
    """``Bob [MSN] - msn bob@example.com - add bob.msn@... to your contacts``."""
    return (
        f"{display_with_network(info.display_name, info.address)} - {spelled(info.address)}"
        f" - add {alias} to your contacts"
    )


# ---- answering (through a small view of the core)


class BotCore(Protocol):
    """What the bot needs from the core (gateway.core.GatewayCore provides it)."""

    async def account(self, address: str) -> AccountInfo | None: ...

    async def resolve(self, address: str) -> str | None: ...

    async def present_as(self, address: str, network: str) -> str: ...

    async def find_accounts(
        self, network: str, text: str, limit: int = 20
    ) -> Sequence[AccountInfo]: ...

    async def linked(self, address: str) -> Sequence[str]: ...

    def is_bot(self, address: str) -> bool: ...


async def answer(core: BotCore, sender: str, body: str) -> str:
    """The bot's reply to ``sender``'s message ``body``."""
    command = parse_command(body)
    sender_network, _ = split_address(sender)
    if isinstance(command, HelpCommand):
        return help_text(command.unknown)
    if isinstance(command, UsageProblem):
        return f"{command.message}\n{TRY_HELP}"
    if isinstance(command, FindCommand):
        return await _find(core, sender_network, command)
    return await _whois(core, sender_network, command)


async def _listed(core: BotCore, address: str) -> AccountInfo | None:
    """The account at ``address`` if the bot may name it (enabled, not a bot)."""
    if core.is_bot(address):
        return None
    info = await core.account(address)
    return None if info is None or info.disabled else info


async def _line(core: BotCore, info: AccountInfo, sender_network: str) -> str:
    return found_line(info, await core.present_as(info.address, sender_network))


async def _exact(core: BotCore, network: str, native: str) -> str | None:
    """The real address behind ``native`` in ``network`` (an account or an alias)."""
    try:
        address = make_address(network, native)
    except AddressError:
        return None
    return await core.resolve(address)


async def _find(core: BotCore, sender_network: str, command: FindCommand) -> str:
    real = await _exact(core, command.network, command.text)
    if real is not None:
        info = await _listed(core, real)
        if info is not None:
            return await _line(core, info, sender_network)
    lines = []
    # One extra: a bot among the hits is dropped and the list still fills up.
    for found in await core.find_accounts(command.network, command.text, FIND_LIMIT + 1):
        info = await _listed(core, found.address)
        if info is not None:
            lines.append(await _line(core, info, sender_network))
        if len(lines) == FIND_LIMIT:
            break
    return "\n".join(lines) if lines else NOBODY_FOUND


async def _whois(core: BotCore, sender_network: str, command: WhoisCommand) -> str:
    real = await _exact(core, command.network or sender_network, command.native)
    if real is None:
        return NOBODY_HAS_THAT_ID
    if core.is_bot(real):
        return ITS_ME
    info = await _listed(core, real)
    if info is None:
        return NOBODY_HAS_THAT_ID
    lines = [await _line(core, info, sender_network)]
    for other in await core.linked(real):
        if other == real:
            continue
        other_info = await _listed(core, other)
        if other_info is not None:
            lines.append("same person: " + await _line(core, other_info, sender_network))
    return "\n".join(lines)
