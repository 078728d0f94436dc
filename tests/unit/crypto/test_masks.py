"""Masks keep no more than their kind allows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from hub.catalog.manifest import HashMask, NullifyMask, PartialMask, RoundMask, YearOnlyMask
from hub.crypto.masks import column_mask


def test_partial_keeps_first_and_last_characters() -> None:
    mask = column_mask(PartialMask(kind="partial", keep_first=6, keep_last=4), b"k")
    assert mask(["11010519900101123X", None]) == ["110105********123X", None]
    assert column_mask(PartialMask(kind="partial", keep_first=3, keep_last=4), b"k")(["13812345678"]) == ["138****5678"]


def test_partial_masks_a_value_too_short_to_keep_both_ends_whole() -> None:
    mask = column_mask(PartialMask(kind="partial", keep_first=1, keep_last=1), b"k")
    assert mask(["王", "王五", "王小明"]) == ["*", "**", "王*明"]


def test_year_only_keeps_the_year() -> None:
    mask = column_mask(YearOnlyMask(kind="year_only"), b"k")
    assert mask([date(1990, 5, 17), datetime(2001, 2, 3, 4, 5)]) == ["1990", "2001"]


def test_round_keeps_the_magnitude_and_the_type() -> None:
    mask = column_mask(RoundMask(kind="round", digits=2), b"k")
    assert mask([Decimal("12345.67"), 1249, None]) == [Decimal("12300"), 1200, None]


def test_nullify_keeps_nothing() -> None:
    assert column_mask(NullifyMask(kind="nullify"), b"k")(["a", None]) == [None, None]


def test_hash_matches_equal_values_only_under_the_same_key() -> None:
    one = column_mask(HashMask(kind="hash"), b"department-a")
    other = column_mask(HashMask(kind="hash"), b"department-b")
    a, b, c = one(["x", "x", "y"])
    assert a == b != c
    assert len(a) == 64 and "x" not in a
    assert other(["x"])[0] != a
