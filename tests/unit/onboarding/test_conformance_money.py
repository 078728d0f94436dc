"""The open question of a Decimal field over a SQLite REAL column, decided: money is never read
from a floating-point column, at start-up or by `hub manifest check`; the line says how to fix
it (a NUMERIC column, or `type: Float` where an approximate number will do)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import create_async_engine

from hub.catalog import load_catalog
from hub.cli.main import main
from hub.onboarding.conformance import check_department

MANIFEST = """department: grants
connection:
  sqlite_path: grants.db
entities:
  - name: Award
    table: award
    key: awardId
    fields:
      - {{name: awardId, column: award_id, type: ID}}
      - {{name: amount, type: {kind}}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    with sqlite3.connect(tmp_path / "grants.db") as db:
        db.execute("CREATE TABLE award (award_id TEXT PRIMARY KEY, amount REAL, exact NUMERIC(12, 2))")
        db.execute("INSERT INTO award VALUES ('A1', 0.1, 0.1)")
    return tmp_path


def _mismatches(folder: Path, kind: str) -> list[str]:
    (folder / "grants.yaml").write_text(MANIFEST.format(kind=kind), encoding="utf-8")
    catalog = load_catalog(folder)

    async def check() -> list[str]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'grants.db'}")
        try:
            return [str(m) for m in await check_department(catalog, "grants", engine)]
        finally:
            await engine.dispose()

    return asyncio.run(check())


def test_a_decimal_field_over_a_real_column_is_refused_with_how_to_fix_it(folder: Path) -> None:
    assert _mismatches(folder, "Decimal") == [
        "grants.yaml: entity Award, field amount: column amount is REAL; a Decimal field is never read from a "
        "floating-point column (it would round amounts): store it as NUMERIC(p, s) (in SQLite, a NUMERIC "
        "column), or declare the field Float if an approximate number will do"
    ]


def test_the_same_column_declared_float_or_a_numeric_column_declared_decimal_matches(folder: Path) -> None:
    assert _mismatches(folder, "Float") == []
    manifest = MANIFEST.format(kind="Decimal").replace("{name: amount,", "{name: amount, column: exact,")
    (folder / "grants.yaml").write_text(manifest, encoding="utf-8")
    result = CliRunner().invoke(main, ["manifest", "check", "--manifests", str(folder)], env={})
    assert result.exit_code == 0, result.output
    assert result.stdout == "department grants: matches its database (1 entities)\n"


def test_hub_manifest_check_exits_1_on_money_in_a_real_column(folder: Path) -> None:
    (folder / "grants.yaml").write_text(MANIFEST.format(kind="Decimal"), encoding="utf-8")
    result = CliRunner().invoke(main, ["manifest", "check", "--manifests", str(folder)], env={})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: grants.yaml: entity Award, field amount: column amount is REAL;")
    assert "Traceback" not in result.output
