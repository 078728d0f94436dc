"""What the maintenance commands share: their error and the shape of a progress report."""

from __future__ import annotations

from collections.abc import Callable

# (what is being done, rows done, rows in all): called after every batch.
Progress = Callable[[str, int, int], None]


class MaintenanceError(Exception):
    """A maintenance command cannot do what was asked; the message says what to change. It
    never holds a value of a row."""


def no_progress(_label: str, _done: int, _total: int) -> None:
    pass
