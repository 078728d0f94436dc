"""Blind indexes: a full HMAC-SHA256 of the normalised value, under the key of an index domain.

One key per domain (`resident_id`, `mobile`, ...), shared by every column of that domain in every
department, so that two departments' indexes of one person are equal and can be joined or
filtered on without decrypting. The key is never an encryption key, and the digest is never
truncated: an equality on it is an equality on the normalised value.

Normalisation is part of the stored format (rules version 1, docs/stored-format.md): changing a
rule changes every index of its domain, which then has to be recomputed.

- `resident_id`: NFKC, surrounding white space removed, letters upper-cased (the final check
  character `x` becomes `X`).
- `mobile`: NFKC; white space, hyphens and dashes (U+2010 to U+2015, U+2212), dots and
  parentheses removed; a leading `+86`, `0086`, or `86`
  before eleven digits removed, leaving the eleven-digit number. A value that does not come down
  to eleven digits is indexed as cleaned, so it matches only its own spelling.
- `name`, `person_name`: NFKC, surrounding white space removed.
- any other domain: NFKC, surrounding white space removed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Sequence

RULES_VERSION = 1
KEY_BYTES = 32

_MOBILE_NOISE = re.compile(r"[\s\-.()\u2010-\u2015\u2212]")
_MOBILE_COUNTRY = re.compile(r"^(?:\+86|0086|86(?=\d{11}$))")


def normalise_resident_id(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().upper()


def normalise_mobile(value: str) -> str:
    cleaned = _MOBILE_NOISE.sub("", unicodedata.normalize("NFKC", value))
    return _MOBILE_COUNTRY.sub("", cleaned)


def normalise_name(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def normalise_default(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


NORMALISERS: dict[str, Callable[[str], str]] = {
    "resident_id": normalise_resident_id,
    "mobile": normalise_mobile,
    "name": normalise_name,
    "person_name": normalise_name,
}


def normaliser(domain: str) -> Callable[[str], str]:
    return NORMALISERS.get(domain, normalise_default)


class BlindIndex:
    """The blind index of one domain. Its values are 32-byte digests (`digest`) or, for text
    columns, the same digests in lower-case hex (`hex`, 64 characters)."""

    __slots__ = ("_key", "_normalise", "domain")

    def __init__(self, domain: str, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a blind-index key is 32 bytes")
        self.domain = domain
        self._key = key
        self._normalise = normaliser(domain)

    def __repr__(self) -> str:
        return f"BlindIndex({self.domain!r})"

    def normalise(self, value: str) -> str:
        return self._normalise(value)

    def digest(self, value: str) -> bytes:
        return hmac.digest(self._key, self._normalise(value).encode(), "sha256")

    def hex(self, value: str) -> str:
        return self.digest(value).hex()

    def hex_column(self, values: Sequence[str | None]) -> list[str | None]:
        key, normalise, sha256 = self._key, self._normalise, hashlib.sha256
        return [None if v is None else hmac.new(key, normalise(v).encode(), sha256).hexdigest() for v in values]
