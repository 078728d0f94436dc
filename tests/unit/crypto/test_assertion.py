"""Gateway assertions (hub/crypto/assertion.py): what a signature by a configured gateway key
may carry, for how long, and what is refused before the app name is even read."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.crypto.assertion import AssertionRefused, AssertionVerifier, sign_assertion

KEY = os.urandom(32)
PUBLIC = Ed25519PrivateKey.from_private_bytes(KEY).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
NOW = 1_765_000_000.0


def _signed(claims: dict[str, object], key: bytes = KEY) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    head = f"v1.{payload}"
    signature = Ed25519PrivateKey.from_private_bytes(key).sign(head.encode())
    return f"{head}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _refusal(assertion: str, keys: tuple[bytes, ...] = (PUBLIC,)) -> str:
    with pytest.raises(AssertionRefused) as caught:
        AssertionVerifier(keys).app(assertion, now=NOW)
    return str(caught.value)


def test_an_assertion_of_a_configured_gateway_names_its_app() -> None:
    assert AssertionVerifier((PUBLIC,)).app(sign_assertion(KEY, "health-app", now=NOW), now=NOW + 10) == "health-app"


def test_a_second_configured_gateway_key_is_accepted_too() -> None:
    other = os.urandom(32)
    public = Ed25519PrivateKey.from_private_bytes(other).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert AssertionVerifier((PUBLIC, public)).app(sign_assertion(other, "a", now=NOW), now=NOW) == "a"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"app": "a", "iat": int(NOW) - 120, "exp": int(NOW) - 60}, "expired"),
        ({"app": "a", "iat": int(NOW) + 60, "exp": int(NOW) + 90}, "future"),
        ({"app": "a", "iat": int(NOW), "exp": int(NOW) + 61}, "at most 60"),
        ({"app": "a", "iat": int(NOW), "exp": int(NOW)}, "at most 60"),
        ({"app": "a", "iat": int(NOW), "exp": int(NOW) + 30, "roles": ["admin"]}, "exactly app, iat and exp"),
        ({"app": "a", "iat": NOW, "exp": NOW + 30}, "whole seconds"),
        ({"app": "../etc", "iat": int(NOW), "exp": int(NOW) + 30}, "not an app name"),
        ({"app": "x" * 101, "iat": int(NOW), "exp": int(NOW) + 30}, "not an app name"),
    ],
)
def test_claims_outside_the_rules_are_refused(claims: dict[str, object], reason: str) -> None:
    assert reason in _refusal(_signed(claims))


def test_a_signature_by_another_key_is_refused() -> None:
    assert "signature" in _refusal(sign_assertion(os.urandom(32), "a", now=NOW))


def test_a_hub_that_trusts_no_gateway_refuses_every_assertion() -> None:
    assert "trusts no gateway" in _refusal(sign_assertion(KEY, "a", now=NOW), ())


@pytest.mark.parametrize("text", ["", "v1", "v2.e30.AA", "v1.e30", "v1.!!.!!", "v1." + "A" * 2000 + ".AA", "é.é.é"])
def test_text_that_is_not_a_v1_assertion_is_refused_unread(text: str) -> None:
    assert "format" in _refusal(text)
