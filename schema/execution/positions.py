"""Where shaped rows sit in the response: the path of each row, made only when it is needed
(for an error, or for the normal path's completion of a row), never row by row in advance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from graphql.pyutils import Path


class Rows(Protocol):
    def path(self, index: int) -> Path: ...


@dataclass(frozen=True)
class ListRows:
    list_path: Path

    def path(self, index: int) -> Path:
        return self.list_path.add_key(index, None)


@dataclass(frozen=True)
class OneRow:
    object_path: Path

    def path(self, index: int) -> Path:
        return self.object_path


@dataclass(frozen=True)
class ChildRows:
    """Related rows of many parents in one list: each knows its parent and place. Paths are
    made only for errors and the normal path's completion."""

    parents: Rows
    key: str
    typename: str
    # Per row: its parent's index, and its index in the parent's list (None: a to-one field).
    origins: list[tuple[int, int | None]]

    def path(self, index: int) -> Path:
        parent, place = self.origins[index]
        field_path = Path(self.parents.path(parent), self.key, self.typename)
        return field_path if place is None else field_path.add_key(place, None)
