"""The demo's data made N times larger, every department alike, references kept whole.

Copy 0 is the generated data as it is. Copy c (from 1) repeats every table but the reference
tables (districts, budget lines), with every identifier that names a record or a person (keys,
the values relations join on, ID numbers, mobile numbers, households, global references)
given the suffix `~c`: the copy is a second population with its own requests, cases, payments
and feedback, joined among themselves as the original is, paid from the same budget lines and
living in the same districts. So a group-by over districts, months or budget lines keeps its
groups and gains rows, which is what growth looks like to a department. Used by
`hub load-demo --scale N` and the benchmarks (bench/aggregates.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Rows = list[dict[str, Any]]

# Reference data every copy shares: not repeated, and the values naming it are kept.
SHARED_TABLES = frozenset({"pop_district", "fin_budget_line"})
# Per table, the columns whose values name a record or a person (so differ between copies).
IDENTIFIERS: Mapping[str, tuple[str, ...]] = {
    "pop_person": ("id_number", "mobile", "household_id"),
    "ca_assistance_case": ("case_id", "recipient_id_number", "request_id"),
    "ca_service_delivery": (
        "delivery_id", "case_id", "recipient_id_number", "recipient_mobile", "request_id", "expenditure_id",
    ),
    "hr_pension_account": ("id_number", "account_no"),
    "hr_employment": ("record_id", "id_number"),
    "hr_service_delivery": ("delivery_id", "id_number", "request_id", "expenditure_id"),
    "hlth_visit": ("visit_id", "patient_id_number"),
    "edu_student": ("student_id", "id_number"),
    "edu_student_aid": ("aid_id", "student_id", "student_id_number"),
    "edu_service_delivery": ("delivery_id", "aid_id", "id_number", "request_id", "expenditure_id"),
    "fin_expenditure": ("expenditure_id",),
    "hl_request": ("request_id", "caller_id_number", "caller_mobile"),
    "hl_feedback": ("feedback_id", "request_id", "delivery_ref"),
}  # fmt: skip


def scaled(data: Mapping[str, Mapping[str, Rows]], times: int) -> dict[str, dict[str, Rows]]:
    """`data` (rows by department and table) with every table but the shared ones `times` times
    over; ValueError for a table this module does not know (a new table must say which of its
    columns are identifiers before it can be scaled)."""
    if times < 1:
        raise ValueError("the scale is a whole number of copies, at least 1")
    out: dict[str, dict[str, Rows]] = {}
    for department, tables in data.items():
        out[department] = {}
        for table, rows in tables.items():
            if table in SHARED_TABLES or times == 1:
                out[department][table] = list(rows)
                continue
            if table not in IDENTIFIERS:
                raise ValueError(f"the demo table {table} has no identifier columns declared for scaling")
            columns = IDENTIFIERS[table]
            copies = list(rows)
            for copy in range(1, times):
                suffix = f"~{copy}"
                copies.extend(
                    {**row, **{c: None if row[c] is None else f"{row[c]}{suffix}" for c in columns}} for row in rows
                )
            out[department][table] = copies
    return out
