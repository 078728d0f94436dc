"""Column readers are total: whatever a department database holds reads as a value of the
column's kind or as UNREADABLE, never as an error, and the page names the columns holding one."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.base import UNREADABLE, ColumnSpec, Kind
from connectors.values import column_reader
from hub.crypto.fields import DataKeys, Failure, FieldCipher

ZONE = ZoneInfo("Asia/Shanghai")

BAD: dict[str, tuple[ColumnSpec, Any]] = {
    "text_in_an_int": (ColumnSpec("c", Kind.INT, bits=32), "three"),
    "int_past_32_bits": (ColumnSpec("c", Kind.INT, bits=32), 2**31),
    "int_past_64_bits": (ColumnSpec("c", Kind.INT), 2**64),
    "negative_int_past_32_bits": (ColumnSpec("c", Kind.INT, bits=32), -(2**31) - 1),
    "fraction_in_an_int": (ColumnSpec("c", Kind.INT), 2.5),
    "nan_in_an_int": (ColumnSpec("c", Kind.INT), math.nan),
    "bytes_in_an_int": (ColumnSpec("c", Kind.INT), b"\x01"),
    "nan_float": (ColumnSpec("c", Kind.FLOAT), math.nan),
    "infinite_float": (ColumnSpec("c", Kind.FLOAT), math.inf),
    "int_past_any_float": (ColumnSpec("c", Kind.FLOAT), 10**400),
    "text_in_a_float": (ColumnSpec("c", Kind.FLOAT), "1.5"),
    "nan_decimal": (ColumnSpec("c", Kind.DECIMAL), decimal.Decimal("NaN")),
    "infinite_decimal": (ColumnSpec("c", Kind.DECIMAL), decimal.Decimal("-Infinity")),
    "decimal_past_any_precision": (ColumnSpec("c", Kind.DECIMAL), decimal.Decimal("1e200")),
    "infinite_float_in_a_decimal": (ColumnSpec("c", Kind.DECIMAL), math.inf),
    "text_in_a_decimal": (ColumnSpec("c", Kind.DECIMAL), "a lot"),
    "malformed_date": (ColumnSpec("c", Kind.DATE), "2024-02-30"),
    "zero_date": (ColumnSpec("c", Kind.DATE), "0000-00-00"),
    "number_in_a_date": (ColumnSpec("c", Kind.DATE), 20240101),
    "malformed_datetime": (ColumnSpec("c", Kind.DATETIME), "yesterday"),
    "moment_past_the_calendar": (ColumnSpec("c", Kind.DATETIME), dt.datetime.max.replace(tzinfo=dt.UTC)),
    "date_in_a_datetime": (ColumnSpec("c", Kind.DATETIME), dt.date(2024, 1, 1)),
    "invalid_utf8": (ColumnSpec("c", Kind.STRING), b"\xff\xfe"),
    "float_in_a_string": (ColumnSpec("c", Kind.STRING), math.nan),
    "number_in_a_binary": (ColumnSpec("c", Kind.BYTES), 42),
    "text_in_a_bool": (ColumnSpec("c", Kind.BOOL), "yes"),
}


@pytest.mark.parametrize("kind", BAD)
def test_a_value_not_of_its_column_kind_reads_as_unreadable_and_the_rest_stands(kind: str) -> None:
    spec, bad = BAD[kind]
    good = {
        Kind.INT: 7,
        Kind.FLOAT: 1.5,
        Kind.DECIMAL: decimal.Decimal("1.50"),
        Kind.DATE: dt.date(2024, 1, 1),
        Kind.DATETIME: dt.datetime(2024, 1, 1, 8, 0),
        Kind.STRING: "ok",
        Kind.BYTES: b"ok",
        Kind.BOOL: True,
    }[spec.kind]
    values, unreadable = column_reader(spec, ZONE)([good, bad, None, good])
    assert unreadable
    assert values[1] is UNREADABLE
    assert values[2] is None
    assert values[0] == values[3] and values[0] is not UNREADABLE


def test_a_column_of_good_values_is_not_marked() -> None:
    for spec, values in [
        (ColumnSpec("c", Kind.INT, bits=32), [2**31 - 1, -(2**31), None]),
        (ColumnSpec("c", Kind.DECIMAL), [decimal.Decimal("0"), decimal.Decimal("-1.005"), None]),
        (ColumnSpec("c", Kind.FLOAT), [0.0, -1e300, None]),
        (ColumnSpec("c", Kind.STRING), ["a", b"caf\xc3\xa9", 12]),
        (ColumnSpec("c", Kind.DATE), ["2024-02-29", dt.date(2024, 1, 1)]),
        (ColumnSpec("c", Kind.BYTES), [b"x", bytearray(b"y"), "hub1:AAAA"]),
    ]:
        read, unreadable = column_reader(spec, ZONE)(values)
        assert not unreadable
        assert UNREADABLE not in read


def test_the_cipher_refuses_values_of_no_stored_form_without_allocating_them() -> None:
    cipher = FieldCipher(DataKeys(1, {1: AESGCM(b"k" * 32)}), "d", "E", "f")
    # bytes(10**9) would be a gigabyte of zeros; it is not a stored value, so it is malformed.
    out = cipher.decrypt_column([10**9, UNREADABLE, 4.5, b"short", "not hub1"], ["1"] * 5)
    assert out == [Failure.MALFORMED] * 5
