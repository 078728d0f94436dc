"""Blind indexes: the written normalisation rules, equal indexes for one person across
departments of a domain, unrelated indexes across domains, and hash-mask keys per receiver."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.crypto.blind_index import BlindIndex, normaliser
from hub.crypto.fields import DataKeys
from hub.crypto.keyring import Keyring

settings.register_profile(
    "crypto-ci", max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CI = settings.get_profile("crypto-ci")

RESIDENT_ID_KEY, MOBILE_KEY, NAME_KEY = os.urandom(32), os.urandom(32), os.urandom(32)


def keyring() -> Keyring:
    return Keyring(
        {"population": DataKeys(1, {}), "health": DataKeys(1, {})},
        {"resident_id": RESIDENT_ID_KEY, "mobile": MOBILE_KEY, "person_name": NAME_KEY},
        os.urandom(32),
    )


@pytest.mark.parametrize(
    ("domain", "spellings", "normal"),
    [
        ("resident_id", ["11010519850202567X", "11010519850202567x", " 11010519850202567x\n"], "11010519850202567X"),
        # Full-width digits and letter, as typed with a Chinese input method.
        ("resident_id", ["１１０１０５１９８５０２０２５６７ｘ"], "11010519850202567X"),
        (
            "mobile",
            [
                "13812345678",
                "138 1234 5678",
                "138-1234-5678",
                "+86 138 1234 5678",
                "+8613812345678",
                "0086-138-1234-5678",
            ],
            "13812345678",
        ),
        (
            "mobile",
            ["8613812345678", "(+86) 138.1234.5678", "＋８６ １３８１２３４５６７８", "138–1234–5678"],
            "13812345678",
        ),
        ("person_name", [" 王小明 ", "王小明", "\u3000王小明"], "王小明"),
        ("person_name", ["ｱﾘﾑ"], "アリム"),
        ("anything_else", ["  ＡＢＣ１２３ "], "ABC123"),
    ],
)
def test_normalisation_rules(domain: str, spellings: list[str], normal: str) -> None:
    for spelling in spellings:
        assert normaliser(domain)(spelling) == normal


def test_mobile_numbers_that_are_not_eleven_digits_only_match_themselves() -> None:
    normalise = normaliser("mobile")
    assert normalise("010-6512 3456") == "01065123456"
    assert normalise("86123") == "86123"  # no country code unless eleven digits follow
    assert normalise("13812345678") != normalise("8613812345678 ext 1")


def test_an_index_is_a_full_hmac_sha256_of_the_normalised_value() -> None:
    index = keyring().blind_index("resident_id")
    expected = hmac.new(RESIDENT_ID_KEY, b"11010519850202567X", hashlib.sha256).digest()
    assert index.digest(" 11010519850202567x") == expected
    assert index.hex("11010519850202567x") == expected.hex()
    assert len(index.hex("x")) == 64
    assert index.hex_column(["11010519850202567x", None]) == [expected.hex(), None]


def test_two_departments_index_one_person_alike() -> None:
    # Each department's loader holds its own keyring instance; only the domain's key matters.
    population, health = keyring(), keyring()
    registry_value = population.blind_index("resident_id").hex("11010519850202567X")
    clinic_value = health.blind_index("resident_id").hex("11010519850202567x ")
    assert registry_value == clinic_value


@CI
@given(value=st.text(alphabet="0123456789X", min_size=11, max_size=18))
def test_one_value_indexes_differently_in_different_domains(value: str) -> None:
    ring = keyring()
    digests = {ring.blind_index(domain).digest(value) for domain in ("resident_id", "mobile", "person_name")}
    assert len(digests) == 3


@CI
@given(a=st.text(max_size=30), b=st.text(max_size=30))
def test_indexes_are_equal_exactly_when_normalised_values_are(a: str, b: str) -> None:
    index = keyring().blind_index("person_name")
    assert (index.digest(a) == index.digest(b)) == (index.normalise(a) == index.normalise(b))


def test_hash_mask_keys_differ_per_receiver_and_domain_and_from_index_keys() -> None:
    ring = keyring()
    keys = {
        ring.mask_key(domain, receiver)
        for domain in ("resident_id", "mobile")
        for receiver in ("health", "civil_affairs", "hotline")
    }
    assert len(keys) == 6
    assert ring.mask_key("resident_id", "health") == ring.mask_key("resident_id", "health")
    assert not keys & {RESIDENT_ID_KEY, MOBILE_KEY}
    # Length-prefixed: ("a_b", "c") and ("a", "b_c") are different pairs.
    assert ring.mask_key("a_b", "c") != ring.mask_key("a", "b_c")


def test_a_blind_index_key_must_be_32_bytes_and_is_not_printed() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        BlindIndex("resident_id", b"short")
    assert repr(keyring().blind_index("mobile")) == "BlindIndex('mobile')"
