"""Recognising personal data and stored values by content, as `hub manifest draft` does."""

from __future__ import annotations

import os

from hub.onboarding.guesses import Looks, is_chinese_name, is_mobile, is_resident_id, looks
from tests.resident_ids import check_digit

VALID = "33010219800101101" + check_digit("33010219800101101")


def test_resident_id_needs_its_check_digit_and_a_real_birth_date() -> None:
    assert is_resident_id(VALID)
    wrong = VALID[:17] + ("0" if VALID[17] != "0" else "1")
    assert not is_resident_id(wrong)
    no_such_day = "33010219800231101"
    assert not is_resident_id(no_such_day + check_digit(no_such_day))
    assert not is_resident_id("123456789012345678")


def test_a_lower_case_x_check_character_counts() -> None:
    for n in range(200):
        first17 = f"11010119900101{n:03d}"
        if check_digit(first17) == "X":
            assert is_resident_id(first17 + "x")
            return
    raise AssertionError("no number with check character X in the range")


def test_mobile_is_eleven_digits_from_13_to_19() -> None:
    assert is_mobile("13912345678") and is_mobile("139 1234 5678")
    assert not is_mobile("12912345678") and not is_mobile("1391234567") and not is_mobile("057188888888")


def test_names_start_with_a_common_surname() -> None:
    assert is_chinese_name("王建国") and is_chinese_name("欧阳晓燕")
    assert not is_chinese_name("杭州市") and not is_chinese_name("王") and not is_chinese_name("Wang Wei")


def test_a_few_dirty_values_do_not_hide_a_column_of_ids() -> None:
    values: list[object] = [VALID] * 19 + ["unknown", None, None]
    assert looks(values) is Looks.RESIDENT_ID


def test_a_column_of_mostly_other_text_is_not_guessed() -> None:
    assert looks([VALID, "a", "b", "c"]) is None
    assert looks([None, None]) is None


def test_stored_values_and_blind_indexes_are_told_apart_from_other_bytes() -> None:
    stored = b"\x01\x00\x00\x00\x01" + os.urandom(40)
    assert looks([stored]) is Looks.STORED_BINARY
    assert looks(["hub1:AQAAAAE" + "A" * 60]) is Looks.STORED_TEXT
    assert looks([os.urandom(32)]) is Looks.INDEX_BINARY
    assert looks(["ab" * 32]) is Looks.INDEX_TEXT
    # Plain text that merely starts like the text spelling is not a stored value.
    assert looks(["hub1:not base64!"]) is None
    assert looks([b"\x02" + os.urandom(40)]) is None
