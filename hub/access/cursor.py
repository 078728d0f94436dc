"""Opaque page cursors: the order values of the last row seen, bound to the order they page.

A cursor names its order (and the caller it was issued to), so a cursor from one order is
refused under another instead of silently skipping rows. Cursors are sealed (encrypted and
authenticated): the values they carry may be of fields the caller sees masked, and a forged
cursor must not steer a query. Values keep their types (dates, decimals) across the round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from hub.crypto.sealing import Sealer, SealError
from hub.errors import BadUserInput

VERSION = 1


class Cursors:
    def __init__(self, key: bytes) -> None:
        self._sealer = Sealer(key, b"hub cursor v1")

    def encode(self, order_tag: str, values: Sequence[Any]) -> str:
        payload = [VERSION, order_tag, [_tag(v) for v in values]]
        return self._sealer.seal(orjson.dumps(payload))

    def decode(self, order_tag: str, cursor: str) -> tuple[Any, ...]:
        try:
            version, tag, values = orjson.loads(self._sealer.open(cursor))
            if version != VERSION or not isinstance(values, list):
                raise ValueError
        except (SealError, ValueError, TypeError, orjson.JSONDecodeError):
            raise BadUserInput("`after` is not a cursor this hub issued") from None
        if tag != order_tag:
            raise BadUserInput("this cursor belongs to another order, list or caller; start again without `after`")
        try:
            return tuple(_untag(v) for v in values)
        except (ValueError, TypeError, IndexError, InvalidOperation):
            raise BadUserInput("`after` is not a cursor this hub issued") from None


def _tag(value: Any) -> list[Any]:
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["D", value.isoformat()]
    if isinstance(value, bytes | bytearray | memoryview):
        # A blind index standing in for an encrypted key.
        return ["x", bytes(value).hex()]
    return ["s", str(value)]


def _untag(item: Any) -> Any:
    kind = item[0]
    if kind == "n":
        return None
    value = item[1]
    if kind in ("b", "i", "f", "s"):
        return value
    if kind == "d":
        return Decimal(value)
    if kind == "t":
        return datetime.fromisoformat(value)
    if kind == "D":
        return date.fromisoformat(value)
    if kind == "x":
        return bytes.fromhex(value)
    raise ValueError(kind)
