"""Process exit codes of ``python -m gateway``: one table, used by the CLI, the
runtime, ``--help`` and the README (kept equal by tests/test_startup_errors.py).

A failure the user can fix prints exactly one line ``error: ...`` on stderr and exits
with its code; only a failure nobody foresaw logs a traceback (exit 1).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3
EXIT_IN_USE = 4

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "done (run: stopped cleanly on SIGTERM/SIGINT)"),
    (EXIT_ERROR, "refused (an admin command's message is on stderr) or an unexpected failure"),
    (
        EXIT_CONFIG,
        "bad configuration (config file, a GATEWAY_* variable, an adapter setting,"
        " a malformed Redis URL, a listen address this machine lacks) or a wrong command line",
    ),
    (EXIT_UNAVAILABLE, "Redis unreachable (or the embedded Redis did not start)"),
    (
        EXIT_IN_USE,
        "in use: another gateway holds the data directory, or a listener's port is taken",
    ),
)


def exit_codes_text() -> str:
    """The table as ``--help`` shows it."""
    return "exit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES)
