"""An event made ready for the log before it has a position, and the rows a run of such events
becomes once the writer knows where the run starts.

Staging (the event's columns: its `released` JSON text, the digest of its persons) is the part
of an event's cost that does not depend on its position. The request's own task stages its
event before it joins a flush, so that work is spread over the requests rather than piled on
the flush, and an event that cannot be staged fails its own request only, never the others
flushed with it. What needs the position (the leaf, its hash, the subtrees it closes) is made in
the flush, in log order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import LargeBinary, String, Table

from hub.audit.event import Event
from hub.audit.merkle import Frontier, leaf_hash
from hub.audit.models import KINDS, OUTCOMES, AuditEvent, AuditPerson, node_key


@dataclass(frozen=True, slots=True)
class Staged:
    event: Event
    # The row's columns but its position (Event.columns()).
    columns: dict[str, Any]
    # The persons as stored, made once here: per set of entities, the raw blind indexes (32
    # bytes each) of the persons whose released rows were those entities', end to end.
    persons: list[tuple[str, bytes]]


# The event row's bounded text columns: a value the database would refuse is refused here, for
# its own request, rather than failing the transaction of every event flushed with it.
_EVENT = cast(Table, AuditEvent.__table__)
_LIMITS = {c.name: c.type.length for c in _EVENT.columns if isinstance(c.type, String) and c.type.length}
_BOUNDED = tuple(_LIMITS.items())
PERSON_BYTES = cast(LargeBinary, cast(Table, AuditPerson.__table__).c.person.type).length or 32


class Unfit(ValueError):
    """An event the log's tables cannot hold (the request that made it is refused alone)."""


def stage(event: Event) -> Staged:
    columns = event.columns()
    # Every request passes here on the event loop: one look at all the texts at once, and the
    # column by column check (which names the column at fault) only for a text that may be.
    texts = "".join([value for value in columns.values() if isinstance(value, str)])
    if "\x00" in texts or not texts.isascii() or any(len(columns[n] or "") > limit for n, limit in _BOUNDED):
        _check_texts(columns)
    if columns["outcome"] not in OUTCOMES or columns["kind"] not in KINDS:
        raise Unfit("the event's outcome or kind is not one the log knows")
    by_entities: dict[str, list[str]] = {}
    for person, entities in event.persons.items():
        by_entities.setdefault(entities, []).append(person)
    return Staged(event, columns, [(entities, raw(persons)) for entities, persons in by_entities.items()])


def _check_texts(columns: dict[str, Any]) -> None:
    """Unfit, naming the column, for a text the tables cannot hold."""
    for name, value in columns.items():
        if not isinstance(value, str):
            continue
        limit = _LIMITS.get(name)
        if limit is not None and len(value) > limit:
            raise Unfit(f"the event's {name} is longer than {limit}")
        if "\x00" in value:  # PostgreSQL's text holds no U+0000
            raise Unfit(f"the event's {name} holds U+0000")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # a lone surrogate: no UTF-8, no database takes it
                raise Unfit(f"the event's {name} is not valid Unicode") from None


def raw(persons: list[str]) -> bytes:
    """Persons' blind indexes as stored: the 32 bytes the lower-case hex of each spells, end to
    end. Anything else is refused, since the hex shown back (and hashed into the persons digest)
    must be the very text the event was made with: not upper case, not spaced, not shorter or
    longer. (One conversion and one check for them all: a W1 event has 1,330.)"""
    try:
        text = "".join(persons)
        value = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise Unfit("a person's blind index is not hexadecimal") from None
    if set(map(len, persons)) != {PERSON_BYTES * 2} or value.hex() != text:
        raise Unfit(f"a person's blind index is not {PERSON_BYTES * 2} lower-case hexadecimal digits")
    return value


def person_rows(item: Staged, position: int) -> Iterator[dict[str, Any]]:
    """The person rows of a staged event at `position`."""
    at_us, size = item.event.at_us, PERSON_BYTES
    for entities, persons in item.persons:
        for start in range(0, len(persons), size):
            yield {"position": position, "person": persons[start : start + size], "at_us": at_us, "entities": entities}


@dataclass(slots=True)
class Rows:
    """What a run of events adds to the three tables."""

    events: list[dict[str, Any]]
    persons: list[dict[str, Any]]
    nodes: list[dict[str, Any]]


def rows_at(staged: Sequence[Staged], first: int, edge: Frontier, persons: bool = True) -> Rows:
    """The rows of `staged` at positions first, first + 1, ...; `edge` (the tree's right edge at
    `first`) is advanced past them. Without `persons`, no person rows (a writer that sends
    `Staged.persons` as they are)."""
    rows = Rows([], [], [])
    for offset, item in enumerate(staged):
        position = first + offset
        event, columns = item.event, item.columns
        rows.events.append({"position": position, **columns})
        if persons:
            rows.persons.extend(person_rows(item, position))
        closed = edge.append(leaf_hash(event.leaf_of(position, columns)))
        rows.nodes.extend({"node": node_key(level, idx), "hash": digest} for (level, idx), digest in closed)
    return rows
