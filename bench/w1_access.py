"""Workload W1-access: W1's query (10,000 service deliveries by all 12 fields) as a caller that
gets three fields masked and one withheld, against the same query on a hub with access checks
off; the policy change that makes such a caller; and the check that the two answers differ
exactly as the policy says, and nowhere else.

No demo role gets that mix on civil affairs' service deliveries: its four sensitive (L3) fields
are all masked for other departments' apps and for auditors, all plain for civil affairs. So
the run adds a bench-only role through the admin API, as the platform admin, in its own
temporary hub database: a department app (it inherits `department_app`) with one per-field
exception in the style of the default policy's `hotline.Request.content` line, a deny of the
mobile number's mask. `policies/default.yaml` is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import orjson

from bench.measure import Contender, client
from bench.w1 import FIELD, FIELDS, QUERY, ROWS, Mismatch, fetch
from hub.access.plan import ReleaseEverything
from hub.catalog import Catalog
from hub.catalog.manifest import PartialMask, RoundMask

ENTITY = "civil_affairs.ServiceDelivery"
# The measured caller: another department's app (health), stating no purpose, so no grant
# applies and the sensitive fields fall to the mask lines.
APP_NAME = "bench-access"
APP_DEPARTMENT = "health"
ROLE = "bench_w1_access"
# Who makes the policy change, as the demo's platform admin is registered.
ADMIN_NAME = "bench-admin"
ADMIN_DEPARTMENT = "platform"
ADMIN_ROLE = "admin"

MASKED = ("recipientName", "recipientIdNumber", "amount")
WITHHELD = "recipientMobile"
PLAIN = tuple(name for name in FIELDS.split() if name not in MASKED and name != WITHHELD)
# The policy version the access-off hub reports, so the check knows it answered open.
OPEN_VERSION = ReleaseEverything.version

EDITS: list[dict[str, object]] = [
    {"op": "ADD_INHERITANCE", "inheritance": {"role": ROLE, "inherits": "department_app", "domain": "*"}},
    {
        "op": "ADD_RULE",
        "rule": {"role": ROLE, "domain": "*", "object": f"{ENTITY}.{WITHHELD}", "action": "mask", "effect": "deny"},
    },
]
REASON = "benchmark W1-access: a department app with three fields masked and one withheld"
CHANGE = """
mutation BenchAccess($edits: [PolicyEditInput!]!, $reason: String!) {
  changePolicy(edits: $edits, reason: $reason) { applied version }
}"""


class PolicySetupError(RuntimeError):
    """The bench could not give its caller the decisions W1-access needs."""


def contenders(on_url: str, off_url: str, token: str) -> tuple[Contender, Contender]:
    """The same request (W1's query, the bench caller's token, no purpose) to both hubs."""
    headers = {"Authorization": f"Bearer {token}"}
    return (
        Contender("hub, access checks on", "POST", f"{on_url}/graphql", headers, {"query": QUERY}),
        Contender("hub, access checks off", "POST", f"{off_url}/graphql", headers, {"query": QUERY}),
    )


def _graphql(base_url: str, token: str, query: str, variables: Mapping[str, object] | None = None) -> dict[str, Any]:
    with client() as http:
        response = http.post(
            f"{base_url}/graphql",
            headers={"Authorization": f"Bearer {token}"},
            json={"query": query, "variables": dict(variables or {})},
        )
    body = orjson.loads(response.content) if response.content else None
    if response.status_code != 200 or not isinstance(body, dict) or body.get("errors"):
        raise PolicySetupError(f"the hub answered HTTP {response.status_code}: {response.text[:2000]}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PolicySetupError(f"the hub answered without data: {response.text[:2000]}")
    return data


def apply_policy(base_url: str, admin_token: str) -> int:
    """Add the bench role's lines as one recorded change; the new policy version."""
    data = _graphql(base_url, admin_token, CHANGE, {"edits": EDITS, "reason": REASON})
    result = data["changePolicy"]
    if not result.get("applied"):
        raise PolicySetupError(f"the policy change was not applied: {result}")
    return int(result["version"])


def decisions(base_url: str, admin_token: str) -> dict[str, str]:
    """The live policy's decision on each of W1's fields for the bench caller, asked through
    `explain` (admins may ask about anyone)."""
    names = FIELDS.split()
    parts = [
        f'f{i}: explain(entity: "{ENTITY}", field: "{name}", subject: "{APP_NAME}") {{ decision }}'
        for i, name in enumerate(names)
    ]
    data = _graphql(base_url, admin_token, "{ " + " ".join(parts) + " }")
    return {name: str(data[f"f{i}"]["decision"]) for i, name in enumerate(names)}


def check_decisions(found: Mapping[str, str]) -> None:
    expected = {name: "PLAIN" for name in PLAIN} | {name: "MASKED" for name in MASKED} | {WITHHELD: "DENIED"}
    wrong = {name: (found.get(name), want) for name, want in expected.items() if found.get(name) != want}
    if wrong:
        raise PolicySetupError(f"the bench caller's decisions are not 3 MASKED + 1 DENIED; (found, expected): {wrong}")


# --- what a masked value must be ------------------------------------------------------------

Expect = Callable[[Any], Any]


def _partial(first: int, last: int) -> Expect:
    # The mask: keep the first and last characters, star the rest; a value too short
    # to keep both ends is starred whole.
    def expect(value: Any) -> Any:
        text = str(value)
        if len(text) <= first + last:
            return "*" * len(text)
        return text[:first] + "*" * (len(text) - first - last) + text[len(text) - last :]

    return expect


def _round(digits: int) -> Expect:
    step = Decimal(10) ** digits

    def expect(value: Any) -> Any:
        return (Decimal(str(value)) / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step

    return expect


def mask_expectations(catalog: Catalog) -> dict[str, Expect]:
    """For each masked field, its masked value as a function of the plain one, written here from
    the manifest's mask parameters (not with the hub's own mask code)."""
    fields = catalog.entity(ENTITY).fields
    out: dict[str, Expect] = {}
    for name in MASKED:
        mask = fields[name].mask
        if isinstance(mask, PartialMask):
            out[name] = _partial(mask.keep_first, mask.keep_last)
        elif isinstance(mask, RoundMask):
            out[name] = _round(mask.digits)
        else:
            raise PolicySetupError(f"{ENTITY}.{name} has mask {mask!r}; the bench checks partial and round masks")
    return out


def _same_masked(name: str, found: Any, plain: Any, expect: Expect) -> bool:
    if plain is None:
        return found is None
    want = expect(plain)
    if isinstance(want, Decimal):
        # A rounded amount keeps the Decimal scalar: a decimal string, compared as a number.
        try:
            return isinstance(found, str) and Decimal(found) == want
        except InvalidOperation:
            return False
    return bool(found == want)


# --- the check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessCheck:
    """What the check established, for the report."""

    policy_version: str
    masked_paths: list[str]
    withheld_paths: list[str]
    error: dict[str, Any]
    # Non-null plain values of each masked or withheld field that the check compared.
    compared: dict[str, int]
    body_members: dict[str, list[str]]


def _nodes(body: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    data = body.get("data")
    listing = data.get(FIELD) if isinstance(data, dict) else None
    nodes = listing.get("nodes") if isinstance(listing, dict) else None
    if not isinstance(nodes, list) or len(nodes) != ROWS:
        count = len(nodes) if isinstance(nodes, list) else nodes
        raise Mismatch(f"{name} sent {count} nodes, expected {ROWS}")
    return nodes


def verify(on: Contender, off: Contender, expectations: Mapping[str, Expect]) -> AccessCheck:
    """Fetch both once. The access-off answer must be plain and error-free; the access-on one
    must equal it in every plain field of every node, carry each masked field as its mask
    makes it from the plain value, carry the withheld field as null in every node, and have
    exactly one error: FORBIDDEN on the withheld field with count 10,000."""
    on_body = fetch(on, errors_allowed=True)
    off_body = fetch(off)
    on_nodes, off_nodes = _nodes(on_body, on.name), _nodes(off_body, off.name)

    errors = on_body.get("errors") or []
    if len(errors) != 1:
        raise Mismatch(f"{on.name} sent {len(errors)} errors, expected 1:\n{orjson.dumps(errors[:5]).decode()}")
    error = errors[0]
    extensions = error.get("extensions") or {}
    path = error.get("path") or []
    if extensions.get("code") != "FORBIDDEN" or extensions.get("count") != ROWS or path[-1:] != [WITHHELD]:
        raise Mismatch(f"{on.name}'s error is not FORBIDDEN on {WITHHELD} with count {ROWS}: {error}")

    access = (on_body.get("extensions") or {}).get("access") or {}
    masked_paths, withheld_paths = list(access.get("masked") or []), list(access.get("withheld") or [])
    if sorted(p.rsplit("/", 1)[-1] for p in masked_paths) != sorted(MASKED):
        raise Mismatch(f"{on.name} declares masked {masked_paths}, expected the paths of {MASKED}")
    if withheld_paths != ["/".join(map(str, path))]:
        raise Mismatch(f"{on.name} declares withheld {withheld_paths}, expected the error's path {path}")
    off_access = (off_body.get("extensions") or {}).get("access") or {}
    if off_access.get("policyVersion") != OPEN_VERSION or off_access.get("masked") or off_access.get("withheld"):
        raise Mismatch(f"{off.name} did not answer under ReleaseEverything, releasing all: {off_access}")

    compared = dict.fromkeys((*MASKED, WITHHELD), 0)
    for index, (found, plain) in enumerate(zip(on_nodes, off_nodes, strict=True)):
        if set(found) != set(plain):
            raise Mismatch(f"node {index}: fields {sorted(found)} != {sorted(plain)}")
        for name in PLAIN:
            if found[name] != plain[name]:
                raise Mismatch(f"node {index}: {name} differs: {found[name]!r} (on) != {plain[name]!r} (off)")
        for name, expect in expectations.items():
            if not _same_masked(name, found[name], plain[name], expect):
                raise Mismatch(
                    f"node {index}: {name} is {found[name]!r} with access checks on; "
                    f"its mask makes {plain[name]!r} into {expect(plain[name])!r}"
                )
        if found[WITHHELD] is not None:
            raise Mismatch(f"node {index}: the withheld {WITHHELD} is {found[WITHHELD]!r}, not null")
        for name in compared:
            compared[name] += plain[name] is not None
    empty = [name for name, count in compared.items() if count == 0]
    if empty:
        # Comparing only nulls would prove nothing about masking or withholding.
        raise Mismatch(f"{off.name} sent no value at all for {empty}; the check would be vacuous")
    return AccessCheck(
        policy_version=str(access.get("policyVersion")),
        masked_paths=masked_paths,
        withheld_paths=withheld_paths,
        error=error,
        compared=compared,
        body_members={on.name: sorted(on_body), off.name: sorted(off_body)},
    )
