"""What a column's values look like: resident ID numbers, mobiles, Chinese names, or values
already in the hub's stored format (docs/stored-format.md).

Guesses are made on a sample of values, not on column names alone: a column called `remark`
that holds ID numbers is as sensitive as one called `id_number`. A kind is guessed when nearly
every sampled value fits it, so a few dirty rows do not hide a column of ID numbers.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from datetime import date

from hub.crypto.fields import key_version
from hub.demo.identities import CHECK_CHARS, CHECK_WEIGHTS, SURNAMES


class Looks(enum.Enum):
    RESIDENT_ID = "resident ID numbers"
    MOBILE = "mobile numbers"
    NAME = "personal names"
    STORED_BINARY = "encrypted values (stored format 1, binary)"
    STORED_TEXT = "encrypted values (stored format 1, text)"
    INDEX_BINARY = "blind indexes (32 bytes)"
    INDEX_TEXT = "blind indexes (64 hex digits)"


# The share of sampled values that must fit a kind: dirty rows do not hide a column of IDs.
SHARE = 0.9

_RESIDENT_ID = re.compile(r"^[1-9]\d{16}[\dXx]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CJK = re.compile(r"^[\u4e00-\u9fff·]{2,5}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SURNAMES = frozenset(SURNAMES)


def is_resident_id(value: str) -> bool:
    """A GB 11643 resident ID number: 18 characters, a real birth date, a valid check character."""
    value = value.strip()
    if not _RESIDENT_ID.match(value):
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], CHECK_WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11] == value[17].upper()


def is_mobile(value: str) -> bool:
    """A mainland mobile number: 11 digits starting 13-19 (spaces and dashes allowed)."""
    return bool(_MOBILE.match(re.sub(r"[\s-]", "", value)))


def is_chinese_name(value: str) -> bool:
    """Two to five Chinese characters starting with a common surname (one or two characters)."""
    value = value.strip()
    return bool(_CJK.match(value)) and (value[:1] in _SURNAMES or value[:2] in _SURNAMES)


def _is_index(value: object) -> Looks | None:
    if isinstance(value, bytes | bytearray | memoryview) and len(value) == 32:
        return Looks.INDEX_BINARY
    if isinstance(value, str) and _HEX64.match(value):
        return Looks.INDEX_TEXT
    return None


def _kind(value: object) -> Looks | None:
    if key_version(value) is not None:
        return Looks.STORED_TEXT if isinstance(value, str) else Looks.STORED_BINARY
    index = _is_index(value)
    if index is not None:
        return index
    if not isinstance(value, str):
        return None
    if is_resident_id(value):
        return Looks.RESIDENT_ID
    if is_mobile(value):
        return Looks.MOBILE
    if is_chinese_name(value):
        return Looks.NAME
    return None


def looks(values: Sequence[object]) -> Looks | None:
    """The kind nearly all of `values` (None left out) fit, or None."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    counts: dict[Looks, int] = {}
    for value in present:
        kind = _kind(value)
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    for kind, count in counts.items():
        if count >= SHARE * len(present):
            return kind
    return None
