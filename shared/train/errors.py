"""The training library's errors: one line each, printed by the command line (exit 2)."""

from __future__ import annotations

from shared.config import Error


class RunError(Error):
    """The run cannot start (or go on) as asked; the message is one line."""


class NonFiniteError(RunError):
    """The loss or a gradient became NaN or infinite."""
