"""`hub load-demo --scale N`: every department N times over, references kept whole."""

from __future__ import annotations

import pytest

from hub.demo.generate import generate
from hub.demo.scale import IDENTIFIERS, SHARED_TABLES, scaled
from hub.demo.tables import METADATA

DATA = generate()
TRIPLE = scaled(DATA, 3)
# An encrypted key is keyed by its blind index in the stored table: the plain rows hold the value.
KEYS = {
    table.name: [c.name.removesuffix("_bidx") for c in table.primary_key.columns]
    for md in METADATA.values()
    for table in md.sorted_tables
}


def rows(table: str, data: dict[str, dict[str, list[dict[str, object]]]] = TRIPLE) -> list[dict[str, object]]:
    return next(tables[table] for tables in data.values() if table in tables)


def test_every_table_is_repeated_but_the_shared_reference_tables() -> None:
    for department, tables in DATA.items():
        for table, original in tables.items():
            times = 1 if table in SHARED_TABLES else 3
            assert len(TRIPLE[department][table]) == times * len(original), table
    assert set(IDENTIFIERS) | SHARED_TABLES == {t for tables in DATA.values() for t in tables}


def test_keys_stay_unique() -> None:
    for table, key in KEYS.items():
        values = [tuple(row[c] for c in key) for row in rows(table)]
        assert len(values) == len(set(values)), table


@pytest.mark.parametrize(
    ("table", "column", "target", "target_column"),
    [
        ("ca_service_delivery", "case_id", "ca_assistance_case", "case_id"),
        ("ca_service_delivery", "expenditure_id", "fin_expenditure", "expenditure_id"),
        ("ca_service_delivery", "request_id", "hl_request", "request_id"),
        ("ca_service_delivery", "recipient_id_number", "pop_person", "id_number"),
        ("fin_expenditure", "budget_line_id", "fin_budget_line", "line_id"),
        ("edu_service_delivery", "aid_id", "edu_student_aid", "aid_id"),
        ("hl_feedback", "request_id", "hl_request", "request_id"),
        ("pop_person", "district_code", "pop_district", "code"),
        ("hlth_visit", "patient_id_number", "pop_person", "id_number"),
    ],
)
def test_references_resolve_within_the_scaled_data_as_in_the_original(
    table: str, column: str, target: str, target_column: str
) -> None:
    def dangling(data: dict[str, dict[str, list[dict[str, object]]]]) -> int:
        present = {row[target_column] for row in rows(target, data)}
        return sum(1 for row in rows(table, data) if row[column] is not None and row[column] not in present)

    assert dangling(TRIPLE) == 3 * dangling(DATA)


def test_scale_one_is_the_generated_data() -> None:
    assert scaled(DATA, 1) == DATA
    with pytest.raises(ValueError, match="at least 1"):
        scaled(DATA, 0)
