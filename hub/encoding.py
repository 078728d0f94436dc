"""The JSON body of a large answer, encoded a piece at a time.

orjson encodes about a million values in 20 to 60 ms on this machine, in one call that holds
the GIL throughout: in a thread it would stall the event loop just the same, so a large answer
is encoded in pieces of at most PIECE_VALUES values instead, with turns for the loop between
them (connectors/pacing.py). The pieces are cut along the answer's own structure (an object's
members, runs of a list's items) and joined, so the body is byte for byte what one
`orjson.dumps` of the answer makes (tests/unit/http/test_encoding.py).

The body comes as slices of about SLICE_BYTES, joined as the pieces are made, for the answer
to be sent a slice at a time (hub/large_answer.py): never one 26 MB bytes object, whose join
and single copy into the transport held the loop for ~20 ms.

A long list of entity rows may come already encoded (`EncodedList`): the fast path shapes and
encodes it a slice of rows at a time (schema/execution/shaper.py), so its ~80,000 response
objects never live at once as small Python objects. Those filled pymalloc arenas that a few
objects kept by the hub meanwhile then pinned: the memory stayed held after the request. Every
encoder of answers passes `fragment` to orjson as `default`, so an EncodedList becomes its bytes
wherever it sits.
"""

from __future__ import annotations

from typing import Any

import orjson

from connectors.pacing import Steps, run_paced

# Values (scalars, and each object or list) per orjson call: about 1 ms of encoding.
PIECE_VALUES = 20_000
# Bytes per slice of the body: a piece or two of PIECE_VALUES values.
SLICE_BYTES = 1 << 20


class EncodedList:
    """A list whose JSON is made already: each piece is one slice of its items encoded as a
    JSON array (`[...]`); the list is their items joined. `values` is about how many values it
    holds, for cutting the answer around it into pieces."""

    __slots__ = ("pieces", "values")

    def __init__(self, pieces: list[bytes], values: int) -> None:
        self.pieces = pieces
        self.values = values

    def items(self) -> list[memoryview]:
        """Each piece without its brackets (no copy): its items, comma-separated."""
        return [memoryview(piece)[1:-1] for piece in self.pieces if len(piece) > 2]

    def json(self) -> bytes:
        return b"[" + b",".join(self.items()) + b"]"


def fragment(value: Any) -> orjson.Fragment:
    """orjson's `default` for answers: an EncodedList as its bytes; anything else refused as
    orjson refuses it."""
    if type(value) is EncodedList:
        return orjson.Fragment(value.json())
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


async def encoded(value: Any) -> bytes:
    """`orjson.dumps(value)`, made in pieces with turns for the event loop between them."""
    return b"".join(await encoded_slices(value))


async def encoded_slices(value: Any, size: int | None = None) -> list[bytes]:
    """`orjson.dumps(value)` cut into consecutive slices of at least `size` bytes each (but
    the last; SLICE_BYTES by default), made in pieces with turns for the event loop between them."""
    out = _Slices(SLICE_BYTES if size is None else size)
    await run_paced(_pieces(value, out))
    return out.done()


class _Slices:
    """Pieces gathered into slices of at least `size` bytes as they are made."""

    __slots__ = ("pending", "pending_bytes", "size", "slices")

    def __init__(self, size: int) -> None:
        self.size = size
        self.slices: list[bytes] = []
        self.pending: list[bytes] = []
        self.pending_bytes = 0

    def append(self, piece: bytes) -> None:
        self.pending.append(piece)
        self.pending_bytes += len(piece)
        if self.pending_bytes >= self.size:
            self.slices.append(b"".join(self.pending))
            self.pending.clear()
            self.pending_bytes = 0

    def done(self) -> list[bytes]:
        if self.pending or not self.slices:
            self.slices.append(b"".join(self.pending))
            self.pending.clear()
        return self.slices


def _pieces(value: Any, out: _Slices) -> Steps[None]:
    kind = type(value)
    if kind is EncodedList:
        out.append(b"[")
        for at, items in enumerate(value.items()):
            if at:
                out.append(b",")
            out.append(items)
            yield
        out.append(b"]")
        return
    if (kind is not dict and kind is not list) or _weight(value) <= PIECE_VALUES:
        out.append(orjson.dumps(value, default=fragment))
        yield
        return
    if kind is dict:
        if not all(type(key) is str for key in value):
            # orjson's own refusal (or its handling), not a piece-wise guess at it.
            out.append(orjson.dumps(value, default=fragment))
            return
        out.append(b"{")
        for at, (key, item) in enumerate(value.items()):
            out.append(b'"' if at == 0 else b',"')
            out.append(orjson.dumps(key)[1:])
            out.append(b":")
            yield from _pieces(item, out)
        out.append(b"}")
        return
    yield from _list(value, out)


def _list(items: list[Any], out: _Slices) -> Steps[None]:
    """A long list: its items in runs of about PIECE_VALUES values (judged by its first item:
    the rows of one list have one shape), or one at a time where a single item is heavier."""
    each = _weight(items[0])
    out.append(b"[")
    if each * 4 > PIECE_VALUES:
        for at, item in enumerate(items):
            if at:
                out.append(b",")
            yield from _pieces(item, out)
    else:
        run = max(1, PIECE_VALUES // each)
        for start in range(0, len(items), run):
            if start:
                out.append(b",")
            out.append(orjson.dumps(items[start : start + run], default=fragment)[1:-1])
            yield
    out.append(b"]")


def _weight(value: Any) -> int:
    """About how many values `value` holds: each list judged by its first item, so the cost of
    knowing stays a walk down one path rather than over the whole answer."""
    kind = type(value)
    if kind is EncodedList:
        return int(value.values)
    if kind is dict:
        return 1 + sum(_weight(item) if type(item) in _CONTAINERS else 1 for item in value.values())
    if kind is list:
        return 1 + (len(value) * _weight(value[0]) if value else 0)
    return 1


_CONTAINERS = frozenset({dict, list, EncodedList})
