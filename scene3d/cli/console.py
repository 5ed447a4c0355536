"""The consoles every command prints to: messages and progress on stderr, results on stdout."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True)
# Wide enough for the tables when the output is a file or a CI log, not a terminal.
out = Console(width=None if Console().is_terminal else 160)
