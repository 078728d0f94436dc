"""`personAccessHistory` over the demo, as a citizens' app uses it: who received a person's data,
with each entry checked the way docs/audit.md tells a third party to check it (the verifier
here is written from that page, not taken from the hub); and what it must refuse: another role,
another purpose, and guessing past the lookup quota."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from hub.demo.workspace import Workspace
from tests.integration.test_leaks import sensitive
from tests.integration.test_lookup_quota import QuotaHub, guesses, serve

PORTAL, SERVICE = "citizen-portal", "citizen_service"
PERSONS = "query Persons { populationPersons(first: 3) { nodes { idNumber name } } }"
HISTORY = """query History($id: String!, $from: DateTime, $to: DateTime) {
  personAccessHistory(idNumber: $id, from: $from, to: $to) {
    treeHead { treeSize timestamp rootHash signature keyId }
    entries { at department app purpose position leaf auditPath entities fields { entity field level count } }
    truncated
  }
}"""


@pytest.fixture(scope="module")
def portal(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotaHub]:
    yield from serve(demo_workspace, tmp_path_factory.mktemp("portal"), {"citizen_portal": 4})


def history(hub: QuotaHub, id_number: str, caller: str = PORTAL, purpose: str | None = SERVICE) -> dict[str, Any]:
    return hub.query(HISTORY, {"id": id_number}, caller=caller, purpose=purpose).json()  # type: ignore[no-any-return]


# --- a verifier written from docs/audit.md ----------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def included(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2 over the leaf's bytes."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = hashlib.sha256(b"\x00" + leaf).digest()
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def head_signed(head: dict[str, Any], pem: bytes) -> bool:
    key = load_pem_public_key(pem)
    assert isinstance(key, Ed25519PublicKey)
    message = (
        b"hub-audit-tree-head/1\n"
        + int(head["treeSize"]).to_bytes(8, "big")
        + int(head["timestamp"]).to_bytes(8, "big")
        + base64.b64decode(head["rootHash"])
    )
    try:
        key.verify(base64.b64decode(head["signature"]), message)
    except Exception:
        return False
    return True


# --- the tests ----------------------------------------------------------------------------------


def test_a_citizens_app_sees_who_received_a_persons_data_with_proofs_that_verify(portal: QuotaHub) -> None:
    for _ in range(5):  # a log of several events, so that the proofs have several steps
        portal.query("{ healthVisits(first: 1) { nodes { visitId } } }", caller="health-app", purpose="health_care")
    read = portal.query(PERSONS, caller="civil-affairs-app", purpose="social_assistance").json()
    id_number = read["data"]["populationPersons"]["nodes"][0]["idNumber"]
    portal.query(PERSONS, caller="health-app", purpose="health_care")
    answer = history(portal, id_number)
    assert "errors" not in answer, answer
    found = answer["data"]["personAccessHistory"]
    entries, head = found["entries"], found["treeHead"]
    assert {(e["department"], e["app"], e["purpose"]) for e in entries} >= {
        ("civil_affairs", "civil-affairs-app", "social_assistance"),
        ("health", "health-app", "health_care"),
    }
    civil = next(e for e in entries if e["app"] == "civil-affairs-app")
    assert {"entity": "population.Person", "field": "idNumber", "level": "PLAIN", "count": 3} in civil["fields"]
    pem = portal.client.get("/audit/public-key").content
    assert head_signed(head, pem)
    root = base64.b64decode(head["rootHash"])
    assert all(len(e["auditPath"]) >= 2 for e in entries)
    for entry in entries:
        leaf = base64.b64decode(entry["leaf"])
        path = [base64.b64decode(p) for p in entry["auditPath"]]
        assert included(entry["position"], head["treeSize"], leaf, path, root), entry
        # The leaf is the event shown: same app, department, purpose and position.
        shown = orjson.loads(leaf)
        assert (shown["principal"], shown["department"], shown["position"]) == (
            entry["app"],
            entry["department"],
            entry["position"],
        )
    # A changed leaf or a path against another position does not verify.
    first = entries[0]
    leaf = base64.b64decode(first["leaf"]).replace(b"civil", b"civiL")
    path = [base64.b64decode(p) for p in first["auditPath"]]
    assert not included(first["position"], head["treeSize"], leaf + b" ", path, root)
    assert not included(first["position"] + 1, head["treeSize"], base64.b64decode(first["leaf"]), path, root)
    assert not sensitive(orjson.dumps(answer).decode())
    assert id_number not in orjson.dumps(answer).decode()


def test_only_the_citizen_portal_stating_citizen_service_may_ask(portal: QuotaHub) -> None:
    number = guesses(1)[0]
    for caller, purpose in (
        ("auditor", SERVICE),
        ("civil-affairs-app", SERVICE),
        ("platform-admin", SERVICE),
        (PORTAL, "hotline_service"),
        (PORTAL, None),
    ):
        answer = history(portal, number, caller, purpose)
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", (caller, purpose, answer)
        assert answer["data"] is None


def test_a_person_never_touched_gets_an_empty_list_and_the_call_counts_and_is_recorded(portal: QuotaHub) -> None:
    before = portal.used(PORTAL)
    answer = history(portal, guesses(1)[0])
    assert answer["data"]["personAccessHistory"] == {"treeHead": None, "entries": [], "truncated": False}
    assert portal.used(PORTAL) == before + 1
    trail = portal.query(
        '{ auditEvents(filter: {principal: "citizen-portal"}, first: 1) { nodes { operation { name } purpose } } }',
        caller="auditor",
    ).json()
    assert trail["data"]["auditEvents"]["nodes"] == [{"operation": {"name": "History"}, "purpose": SERVICE}]


def test_guessing_past_the_quota_is_refused(portal: QuotaHub) -> None:
    outcomes = [history(portal, g) for g in guesses(5)]
    codes = [a["errors"][0]["extensions"]["code"] if "errors" in a else None for a in outcomes]
    assert "LIMIT_EXCEEDED" in codes
    assert codes[-1] == "LIMIT_EXCEEDED"


def test_an_entry_names_only_the_entities_and_fields_of_the_persons_own_records(portal: QuotaHub) -> None:
    both = "{ populationPersons(first: 1) { nodes { idNumber name } } healthVisits(first: 2) { nodes { visitId } } }"
    read = portal.query(both, caller="health-app", purpose="health_care").json()
    assert "errors" not in read, read
    masked = read["data"]["populationPersons"]["nodes"][0]["idNumber"]
    # The app saw the number masked; the citizen knows their own: read it as the civil affairs app does.
    plain = portal.query(PERSONS, caller="civil-affairs-app", purpose="social_assistance").json()
    id_number = plain["data"]["populationPersons"]["nodes"][0]["idNumber"]
    assert masked != id_number and masked[:3] == id_number[:3]
    answer = history(portal, id_number)
    assert "errors" not in answer, answer
    entries = answer["data"]["personAccessHistory"]["entries"]
    leaves = [orjson.loads(base64.b64decode(e["leaf"])) for e in entries]
    # The request released rows of both entities; this person's records were only of one.
    (mixed,) = [e for e, leaf in zip(entries, leaves, strict=True) if "health.Visit" in leaf["released"]["rows"]]
    assert mixed["entities"] == ["population.Person"]
    assert {f["entity"] for f in mixed["fields"]} == {"population.Person"}
    assert {"entity": "population.Person", "field": "idNumber", "level": "MASKED", "count": 1} in mixed["fields"]
