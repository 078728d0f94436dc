"""Field encryption: values round-trip, are bound to their cell, and any alteration or move is
reported as a failure (never wrong data, never an exception)."""

from __future__ import annotations

import itertools
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.crypto.fields import OVERHEAD, TEXT_PREFIX, DataKeys, Failure, FieldCipher, key_version

settings.register_profile(
    "crypto-ci", max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CI = settings.get_profile("crypto-ci")

KEYS = DataKeys(1, {1: AESGCM(os.urandom(32))})
ID_NUMBER = "11010519850202567X"

plaintexts = st.one_of(
    st.just(""),
    st.text(),
    st.text(min_size=2_000, max_size=20_000),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=200),
    st.from_regex(r"[1-9]\d{16}[0-9X]", fullmatch=True),
)
row_keys = st.text(min_size=1, max_size=40)


def cipher(department: str = "population", entity: str = "Person", field: str = "idNumber") -> FieldCipher:
    return FieldCipher(KEYS, department, entity, field)


@CI
@given(plain=plaintexts, row_key=row_keys)
def test_binary_and_text_forms_round_trip(plain: str, row_key: str) -> None:
    c = cipher()
    stored = c.encrypt(plain, row_key)
    text = c.encrypt_text(plain, row_key)
    assert text.startswith(TEXT_PREFIX)
    assert len(stored) == OVERHEAD + len(plain.encode())
    assert c.decrypt_column([stored, text, memoryview(stored), bytearray(stored)], [row_key] * 4) == [plain] * 4


@pytest.mark.parametrize(
    "plain", ["", ID_NUMBER, "11010519900101123x", "王小明", "糖尿病伴有并发症（E11.9）", "x" * 200_000]
)
def test_named_plaintexts_round_trip(plain: str) -> None:
    c = cipher()
    assert c.decrypt_column([c.encrypt(plain, "R1"), c.encrypt_text(plain, "R1")], ["R1", "R1"]) == [plain, plain]


def test_an_empty_value_is_not_null() -> None:
    c = cipher()
    assert c.decrypt_column([c.encrypt("", "R1"), None], ["R1", "R2"]) == ["", None]


def test_each_value_gets_a_fresh_nonce() -> None:
    c = cipher()
    stored = {c.encrypt(ID_NUMBER, "R1") for _ in range(200)}
    assert len(stored) == 200
    assert len({value[5:17] for value in stored}) == 200


CELLS = [
    (department, entity, field, row)
    for department, entity, field, row in itertools.product(
        ("population", "health"), ("Person", "Visit"), ("idNumber", "mobile"), ("R1", "R2")
    )
]


@pytest.mark.parametrize("origin", CELLS, ids=lambda cell: ".".join(cell))
def test_a_value_moved_to_any_other_cell_is_rejected(origin: tuple[str, str, str, str]) -> None:
    # One key for every cell, so only the associated data can tell them apart.
    department, entity, field, row = origin
    source = cipher(department, entity, field)
    stored: list[bytes | str] = [source.encrypt(ID_NUMBER, row), source.encrypt_text(ID_NUMBER, row)]
    for other in CELLS:
        result = cipher(*other[:3]).decrypt_column(stored, [other[3], other[3]])
        if other == origin:
            assert result == [ID_NUMBER, ID_NUMBER]
        else:
            assert result == [Failure.INTEGRITY, Failure.INTEGRITY], f"{origin} opened as {other}"


def test_a_value_moved_to_another_departments_key_is_rejected() -> None:
    theirs = FieldCipher(DataKeys(1, {1: AESGCM(os.urandom(32))}), "health", "Visit", "diagnosis")
    ours = FieldCipher(KEYS, "health", "Visit", "diagnosis")
    assert ours.decrypt_column([theirs.encrypt("I10", "V1")], ["V1"]) == [Failure.INTEGRITY]


def test_swapping_two_rows_values_is_rejected() -> None:
    c = cipher()
    first, second = c.encrypt_text("110105199001011234", "R1"), c.encrypt_text(ID_NUMBER, "R2")
    assert c.decrypt_column([second, first], ["R1", "R2"]) == [Failure.INTEGRITY, Failure.INTEGRITY]
    assert c.decrypt_column([first, second], ["R1", "R2"]) == ["110105199001011234", ID_NUMBER]


@pytest.mark.parametrize("plain", ["", "王小明", ID_NUMBER])
def test_flipping_any_bit_pattern_of_any_stored_byte_is_rejected(plain: str) -> None:
    c = cipher()
    stored = c.encrypt(plain, "R1")
    altered = [
        stored[:i] + bytes([stored[i] ^ flip]) + stored[i + 1 :] for i in range(len(stored)) for flip in (1, 0x80, 0xFF)
    ]
    results = c.decrypt_column(altered, ["R1"] * len(altered))
    assert all(isinstance(r, Failure) for r in results)
    # The header names the format and the key version; the rest is authenticated by the tag.
    assert set(results[15:]) == {Failure.INTEGRITY}


@pytest.mark.parametrize("plain", ["", "a", "ab", "王小明", ID_NUMBER])
def test_changing_any_character_of_a_text_value_is_rejected(plain: str) -> None:
    c = cipher()
    text = c.encrypt_text(plain, "R1")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .!é"
    altered = [text[:i] + ch + text[i + 1 :] for i in range(len(text)) for ch in alphabet if ch != text[i]]
    altered += [text[:-1], text + "A", text + "=", " " + text, text.upper(), text[1:]]
    results = c.decrypt_column(altered, ["R1"] * len(altered))
    assert all(isinstance(r, Failure) for r in results), [
        a for a, r in zip(altered, results, strict=True) if r == plain
    ]


def test_truncated_or_extended_values_are_rejected() -> None:
    c = cipher()
    stored = c.encrypt(ID_NUMBER, "R1")
    candidates = [stored[:n] for n in range(len(stored))] + [stored + b"\x00", stored + stored]
    assert all(isinstance(r, Failure) for r in c.decrypt_column(candidates, ["R1"] * len(candidates)))


@CI
@given(
    garbage=st.one_of(st.binary(max_size=200), st.text(max_size=200), st.text(max_size=200).map(lambda t: "hub1:" + t))
)
def test_garbage_becomes_a_failure_never_an_exception(garbage: bytes | str) -> None:
    (result,) = cipher().decrypt_column([garbage], ["R1"])
    assert isinstance(result, Failure)


def test_plain_text_left_in_a_column_is_malformed_not_data() -> None:
    assert cipher().decrypt_column([ID_NUMBER, b"", "hub1:"], ["R1"] * 3) == [Failure.MALFORMED] * 3


def test_rotation_new_values_name_the_new_version_and_old_ones_still_decrypt() -> None:
    old_key, new_key = AESGCM(os.urandom(32)), AESGCM(os.urandom(32))
    before = FieldCipher(DataKeys(1, {1: old_key}), "population", "Person", "idNumber")
    after = FieldCipher(DataKeys(2, {1: old_key, 2: new_key}), "population", "Person", "idNumber")
    old_value = before.encrypt_text(ID_NUMBER, "R1")
    new_value = after.encrypt_text(ID_NUMBER, "R2")
    assert (key_version(old_value), key_version(new_value)) == (1, 2)
    assert after.decrypt_column([old_value, new_value], ["R1", "R2"]) == [ID_NUMBER, ID_NUMBER]
    # A keyring that has not been reloaded since the rotation says so rather than guessing.
    assert before.decrypt_column([new_value], ["R2"]) == [Failure.UNKNOWN_KEY]


def test_key_version_of_something_else_is_none() -> None:
    assert key_version(ID_NUMBER) is None
    assert key_version(b"\x02" + bytes(40)) is None


def test_a_value_needs_its_row_key() -> None:
    with pytest.raises(ValueError, match="row"):
        cipher().encrypt(ID_NUMBER, "")
    with pytest.raises(ValueError, match="one row key per value"):
        cipher().decrypt_column([None, None], ["R1"])


def test_no_plaintext_or_key_in_reprs() -> None:
    c = cipher()
    assert "AESGCM" not in repr(KEYS)
    assert repr(c) == "FieldCipher(population.Person.idNumber, current=v1)"
