"""The interactive face of ``uin-client``, for people: a prompt_toolkit prompt.

* Line editing and history (up/down, Ctrl-R search) come from prompt_toolkit.
* Incoming lines are printed *above* the prompt (``patch_stdout``), so text arriving
  while you type never garbles the line you are writing.
* The prompt names where a plain line goes: the current chat, or whoever wrote last.
  ``/r text`` always answers whoever wrote last.
* Your own messages echo as ``[12:34] → 영희 (700456): text ✓`` once the gateway holds
  them, or with ``✗ not delivered: reason``.
* Nicknames stand beside numbers wherever one is known.
* After the server went away (restart, lost channel) it logs in again by itself.
* Ctrl-C or Ctrl-D logs out (LOGOUT, waits for its ack, at most 5 s) and exits 0.

Everything it shows goes through one ``show`` callable (print by default), so tests
can drive it with prompt_toolkit's pipe input and read what a person would see.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from adapters.uin.client.cli import ClientRunner
from adapters.uin.client.commands import CommandError, describe, parse_command
from adapters.uin.client.messenger import UiEvent

LOGOUT_WAIT = 6.0  # the session itself gives up waiting for the LOGOUT ack after 5 s
# The gateway acks a message at once and may refuse it a few milliseconds later (no
# such user, blocked): wait this long after the ack before showing ✓, so a refusal
# shows as one ✗ line instead of ✓ then ✗.
SETTLE = 0.3


class Terminal:
    def __init__(
        self,
        runner: ClientRunner,
        *,
        show: Callable[[str], None] | None = None,
        patch: bool = True,
    ) -> None:
        self.runner = runner
        self._show = show or (lambda line: print(line, flush=True))
        self._patch = patch
        runner.emit = self._event
        runner.settle = SETTLE
        self._prompt: PromptSession[str] = PromptSession(history=InMemoryHistory())

    # ---- output

    def _event(self, event: UiEvent) -> None:
        m = self.runner.messenger
        line = describe(event, m.contacts, m.names)
        if line:
            self._show(line)
        if event.get("event") in ("contacts", "nickname", "message", "logged_in"):
            self._redraw()  # the prompt may now show a nickname or a new reply target

    def _redraw(self) -> None:
        app = self._prompt.app
        if app.is_running:
            app.invalidate()

    def prompt_text(self) -> str:
        target = self.runner.target
        if target is None:
            return "> "
        name = self.runner.messenger.name(target)
        return f"{name} ({target})> " if name else f"{target}> "

    @contextlib.contextmanager
    def _output(self) -> Iterator[None]:
        if self._patch:
            with patch_stdout(raw=True):
                yield
        else:
            yield

    # ---- input

    def _line(self, line: str) -> None:
        runner = self.runner
        try:
            intent = parse_command(line, runner.target)
        except CommandError as exc:
            self._show(f"! {exc}")
            return
        if intent is not None:
            runner.do(intent)

    async def _read(self) -> str | None:
        """One line; None when the person wants to leave (Ctrl-C, Ctrl-D) or the
        session is over."""
        prompt = asyncio.ensure_future(self._ask())
        over = asyncio.ensure_future(self.runner.finished.wait())
        await asyncio.wait({prompt, over}, return_when=asyncio.FIRST_COMPLETED)
        if not prompt.done():
            if self._prompt.app.is_running:
                self._prompt.app.exit(exception=EOFError())
            with contextlib.suppress(asyncio.CancelledError):
                await prompt
            return None
        over.cancel()
        return prompt.result()

    async def _ask(self) -> str | None:
        # KeyboardInterrupt is caught here, inside the task: escaping a task, asyncio
        # would re-raise it out of the event loop.
        try:
            return await self._prompt.prompt_async(self.prompt_text)
        except (KeyboardInterrupt, EOFError):
            return None

    async def run(self, server: tuple[str, int]) -> int:
        runner = self.runner
        with self._output():
            self._show(f"* logging in as {runner.session.uin} at {server[0]}:{server[1]} ...")
            await runner.connect(server)
            while not runner.finished.is_set():
                line = await self._read()
                if line is None:
                    break
                if line.strip().lower() == "/quit":
                    break
                self._line(line)
            if not runner.finished.is_set():
                runner.quit()  # LOGOUT; the session waits for its ack (at most 5 s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(runner.finished.wait(), LOGOUT_WAIT)
        runner.close()
        return runner.exit_code
