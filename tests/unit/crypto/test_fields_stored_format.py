"""The stored formats of docs/stored-format.md, pinned by its test vectors: a value written by
any release decrypts in every later one."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.crypto.blind_index import BlindIndex
from hub.crypto.fields import DataKeys, FieldCipher, context, key_version

DOC = (Path(__file__).resolve().parents[3] / "docs" / "stored-format.md").read_text(encoding="utf-8")
AAD = "6875622d6669656c642f3100000a706f70756c6174696f6e0006506572736f6e000869644e756d62657201000000015231"
BINARY = "0100000001000102030405060708090a0b7633e62af5d0f322b574a7b981db4d5bb48ee6c72d3ce2b952a14343052dba405274"
TEXT = "hub1:AQAAAAEAAQIDBAUGBwgJCgt2M-Yq9dDzIrV0p7mB201btI7mxy084rlSoUNDBS26QFJ0"
INDEX = "45c9966415f2fa7ae38a007bcb55a763d08897740421d5344818be59762136d8"


def test_the_documented_vectors_are_the_ones_tested() -> None:
    for vector in (AAD, BINARY, TEXT, INDEX):
        assert vector in DOC


def test_the_documented_value_decrypts_in_both_spellings() -> None:
    cipher = FieldCipher(DataKeys(1, {1: AESGCM(bytes(range(32)))}), "population", "Person", "idNumber")
    assert cipher.decrypt_column([bytes.fromhex(BINARY), TEXT], ["R1", "R1"]) == ["11010519850202567X"] * 2
    assert key_version(TEXT) == 1


def test_the_documented_associated_data_is_what_the_cipher_binds() -> None:
    raw = bytes.fromhex(BINARY)
    assert context("population", "Person", "idNumber") + raw[:5] + b"R1" == bytes.fromhex(AAD)
    # Encrypting under the documented associated data with the documented nonce gives the vector.
    assert raw[:17] + AESGCM(bytes(range(32))).encrypt(raw[5:17], b"11010519850202567X", bytes.fromhex(AAD)) == raw


def test_the_documented_blind_index() -> None:
    assert BlindIndex("resident_id", bytes(range(32, 64))).hex("11010519850202567x ") == INDEX
