"""Which shared keys this hub can serve to a Federation gateway: for each blind-index domain a
manifest's `shared` declaration names, whether the hub's key of that domain is the one the
composition recorded (the declaration's `index_fingerprint`).

One truth for two readers: `_entities` and the link fields refuse a type whose domain differs
(schema/federation.py), and /readyz lists the domains so refused (readiness.py). /readyz
answers anyone who can reach it, so a state carries the domain, the types and the reason, never
a fingerprint: the declared one names the composition's key across hubs, and the held one
would tell an onlooker which hubs share a key.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from hub.catalog.model import SharedInfo
from hub.crypto.keyring import Keyring


class KeyState(enum.Enum):
    MATCHES = "matches"
    # The hub holds a key of the domain, but not the composition's.
    DIFFERS = "differs"
    # The hub holds no key of the domain at all.
    MISSING = "missing"


def key_state(keyring: Keyring, shared: SharedInfo) -> KeyState:
    """Whether this hub's key of `shared`'s index domain is the declared one (a plain key, with
    no domain, always matches)."""
    if shared.index_domain is None:
        return KeyState.MATCHES
    held = keyring.index_fingerprint(shared.index_domain)
    if held is None:
        return KeyState.MISSING
    return KeyState.MATCHES if held == shared.index_fingerprint else KeyState.DIFFERS


def shared_key_report(keyring: Keyring, shared: Iterable[SharedInfo]) -> dict[str, dict[str, Any]]:
    """For /readyz: per index domain, its state, the shared types keyed on it and, when refused,
    why and what to do. Domains only: plain keys need no shared secret."""
    report: dict[str, dict[str, Any]] = {}
    for info in sorted(shared, key=lambda s: s.type_name):
        if info.index_domain is None:
            continue
        state = key_state(keyring, info)
        entry = report.setdefault(info.index_domain, {"state": state.value, "types": []})
        entry["types"].append(info.type_name)
        if state is KeyState.MATCHES:
            continue
        entry["state"] = state.value
        held = (
            f"this hub holds no blind-index key for {info.index_domain}"
            if state is KeyState.MISSING
            else f"this hub's blind-index key for {info.index_domain} differs from the federation's "
            "recorded fingerprint"
        )
        entry["refused"] = (
            f"{held} (index_fingerprint in the manifests): its shared types are refused to the gateway until "
            "the shared key is imported with `hub keys import-index`"
        )
    return report
