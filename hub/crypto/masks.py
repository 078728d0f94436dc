"""Masks, after Apache Ranger's kinds, applied to a whole column at once.

A masked value never carries more than its mask keeps: partial keeps the first and last
characters, year-only keeps the year, round keeps the magnitude, nullify keeps nothing, and hash
keeps only equality under a key that the caller's department cannot share with another.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from hub.catalog.manifest import HashMask, Mask, NullifyMask, PartialMask, RoundMask, YearOnlyMask

ColumnMask = Callable[[list[Any]], list[Any]]


def column_mask(mask: Mask, hash_key: bytes) -> ColumnMask:
    """The function that masks a column of values; None stays None."""
    if isinstance(mask, PartialMask):
        first, last = mask.keep_first, mask.keep_last
        return lambda values: [None if v is None else _partial(str(v), first, last) for v in values]
    if isinstance(mask, YearOnlyMask):
        return lambda values: [None if v is None else _year(v) for v in values]
    if isinstance(mask, RoundMask):
        step = 10**mask.digits
        return lambda values: [None if v is None else _round(v, step) for v in values]
    if isinstance(mask, NullifyMask):
        return lambda values: [None] * len(values)
    if isinstance(mask, HashMask):
        return lambda values: [
            None if v is None else hmac.new(hash_key, str(v).encode(), hashlib.sha256).hexdigest() for v in values
        ]
    raise TypeError(f"unknown mask {mask!r}")


def _partial(text: str, first: int, last: int) -> str:
    # A value too short to keep both ends is masked whole: keeping them would reveal it all.
    if len(text) <= first + last:
        return "*" * len(text)
    return text[:first] + "*" * (len(text) - first - last) + (text[len(text) - last :] if last else "")


def _year(value: Any) -> str:
    if isinstance(value, datetime | date):
        return f"{value.year:04d}"
    return str(value)[:4]


def _round(value: Any, step: int) -> Any:
    if isinstance(value, Decimal):
        return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step
    if isinstance(value, int):
        return round(value / step) * step
    return float(round(float(value) / step) * step)
