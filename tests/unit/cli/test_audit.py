"""`hub audit` as an auditor runs it: sign a head, verify (exit 0, then 2 once a row is
changed), prove an event, export the public key; failures are one line, never a traceback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from hub.audit.merkle import leaf_hash, verify_inclusion
from hub.catalog import Catalog
from hub.cli.main import main
from hub.crypto.signing import public_raw_from_pem
from tests.conftest import TEST_MASTER_KEY, Hub, serve_small_hub
from tests.unit.audit.test_verify import _sql

PEOPLE = "{ registryPersons { nodes { idNumber name } } }"


def audit_command(url: URL, *args: str) -> Result:
    env = {
        "HUB_DATABASE_URL": url.render_as_string(hide_password=False),
        "HUB_MASTER_KEY": base64.b64encode(TEST_MASTER_KEY).decode(),
    }
    result = CliRunner().invoke(main, ["audit", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def logged(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    for hub in serve_small_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG": "off"}):
        for _ in range(6):
            hub.query(PEOPLE)
        yield hub


def test_head_sign_then_prove_gives_a_proof_anyone_can_check(logged: Hub, tmp_path: Path) -> None:
    signed = audit_command(logged.url, "head", "--sign")
    assert signed.exit_code == 0, signed.output
    head = orjson.loads(signed.stdout)
    assert head["treeSize"] == 6
    proved = audit_command(logged.url, "prove", "3")
    assert proved.exit_code == 0, proved.output
    proof = orjson.loads(proved.stdout)
    assert proof["event"]["position"] == 3 and proof["verified"] is True
    leaf = base64.b64decode(proof["leaf"])
    path = [base64.b64decode(h) for h in proof["auditPath"]]
    assert verify_inclusion(3, 6, leaf_hash(leaf), path, base64.b64decode(head["rootHash"]))
    exported = audit_command(logged.url, "public-key", "--output", str(tmp_path / "hub.pem"))
    assert exported.exit_code == 0
    assert len(public_raw_from_pem((tmp_path / "hub.pem").read_text())) == 32


def test_verify_exits_0_on_an_intact_log_and_2_on_a_changed_row(logged: Hub) -> None:
    audit_command(logged.url, "head", "--sign")
    intact = audit_command(logged.url, "verify")
    assert intact.exit_code == 0, intact.output
    assert "checked 6 of 6 events and 1 signed tree heads" in intact.stdout
    _sql(logged.url, "UPDATE hub_audit_event SET principal = 'someone-else' WHERE position = 2")
    tampered = audit_command(logged.url, "verify")
    assert tampered.exit_code == 2
    assert "altered: event 2 is not the event written there" in tampered.stdout


def test_prove_before_any_signed_head_says_how_to_sign_one(logged: Hub) -> None:
    result = audit_command(logged.url, "prove", "0")
    assert result.exit_code == 1
    assert "hub audit head --sign" in result.stderr
