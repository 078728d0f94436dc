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


def _at_us(url: URL, position: int) -> int:
    import asyncio

    from hub.audit.models import AuditEvent
    from hub.db.engine import hub_engine, sessions

    async def run() -> int:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                row = await session.get(AuditEvent, position)
                assert row is not None
                return row.at_us
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _iso(at_us: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at_us / 1_000_000, UTC).isoformat()


def test_archive_moves_the_oldest_events_and_verify_reads_across_it(logged: Hub, tmp_path: Path) -> None:
    audit_command(logged.url, "head", "--sign")
    output = tmp_path / "trail-1.jsonl"
    dry = audit_command(
        logged.url, "archive", "--before", _iso(_at_us(logged.url, 4)), "--output", str(output), "--dry-run"
    )
    assert "would move events 0 to 3 (4)" in dry.stdout and not output.exists()
    moved = audit_command(logged.url, "archive", "--before", _iso(_at_us(logged.url, 4)), "--output", str(output))
    assert moved.exit_code == 0, moved.output
    assert "moved events 0 to 3 (4)" in moved.stdout
    lines = output.read_bytes().splitlines()
    header = orjson.loads(lines[0])
    assert (header["format"], header["first"], header["end"], len(lines)) == ("hub-audit-archive/1", 0, 4, 5)
    assert [h["treeSize"] for h in header["heads"]] == [6]
    # The log grows on; both parts verify, with the archive and without it.
    logged.query(PEOPLE)
    audit_command(logged.url, "head", "--sign")
    with_archive = audit_command(logged.url, "verify", "--archive", str(output))
    assert with_archive.exit_code == 0, with_archive.output
    assert "checked 7 of 7 events" in with_archive.stdout
    assert "4 events are archived; 4 of them were read from archive files" in with_archive.stdout
    without = audit_command(logged.url, "verify")
    assert without.exit_code == 0, without.output
    assert "checked 3 of 7 events" in without.stdout and "taken from their stored hashes" in without.stdout
    # Refuses to overwrite; an altered archive fails verification.
    assert audit_command(logged.url, "archive", "--before", "2100-01-01", "--output", str(output)).exit_code == 1
    lines[2] = lines[2].replace(b"served", b"refused")
    output.write_bytes(b"\n".join(lines) + b"\n")
    tampered = audit_command(logged.url, "verify", "--archive", str(output))
    assert tampered.exit_code == 2
    assert "altered: event 1 is not the event written there" in tampered.stdout
