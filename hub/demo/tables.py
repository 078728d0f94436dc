"""The demo's department databases: one SQLAlchemy `MetaData` per department.

The types are portable to SQLite, PostgreSQL and MariaDB: money is NUMERIC(14, 2), times are
naive DATETIME in Asia/Shanghai local time (each manifest declares the zone), strings have
lengths. Every table name starts with its department's tag, so all seven departments can share
one database (as the benchmarks do) without clashing; SQLAlchemy's default index names include
the table name, so they stay unique too. Join columns are indexed: ID numbers (by their blind
index), request ids, expenditure ids, budget line ids, case and aid ids.

The fields the manifests mark `encrypted` are binary columns holding stored values
(docs/stored-format.md), and each blind-indexed one has its 32-byte index beside it in
`<column>_bidx`. Ciphertext is never indexed or unique (a fresh nonce makes every value
differ); the index column carries what the plain column did: the index, the uniqueness, or
the primary key. tests/unit/demo/test_generate.py holds these tables to the manifests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

# MariaDB: utf8mb4 holds every Chinese character, and a binary collation gives the code-point
# order the hub promises on every backend, so indexes serve its comparisons directly.
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

TAGS = {
    "population": "pop",
    "civil_affairs": "ca",
    "human_resources": "hr",
    "health": "hlth",
    "education": "edu",
    "finance": "fin",
    "hotline": "hl",
}


def _money(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, Numeric(14, 2), nullable=nullable)


class Bytes(LargeBinary):
    """BLOB or BYTEA, with values handed to the driver as the bytes they are. Every driver the demo
    loads through takes bytes, and LargeBinary's wrapping of each value in the driver's `Binary`
    would add a third of a second to the demo's creation (270,000 values)."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None


# A blind index: BYTEA, BLOB or, on MariaDB, VARBINARY(32), since a BLOB cannot be indexed there
# without a prefix length.
DIGEST = Bytes(32).with_variant(mysql.VARBINARY(32), "mysql", "mariadb")


def _sealed(name: str, nullable: bool = False) -> Column[Any]:
    """An encrypted field's stored values."""
    return Column(name, Bytes, nullable=nullable)


def _index(of: str, nullable: bool = True, unique: bool = False, primary_key: bool = False) -> Column[Any]:
    """The blind index of the encrypted column `of`, indexed: lookups and joins compare it."""
    # A primary key or a unique constraint brings its own index.
    index = not (unique or primary_key)
    return Column(f"{of}_bidx", DIGEST, nullable=nullable, index=index, unique=unique, primary_key=primary_key)


def _indexed(name: str, nullable: bool = True, unique: bool = False) -> list[Column[Any]]:
    """An encrypted, blind-indexed field: its stored values and its index."""
    return [_sealed(name, nullable), _index(name, nullable, unique)]


def _id_number(name: str, nullable: bool = False, unique: bool = False) -> list[Column[Any]]:
    """An encrypted resident ID number and its blind index: departments join on the index."""
    return _indexed(name, nullable, unique)


def _ref(name: str, length: int = 16, nullable: bool = True) -> Column[Any]:
    """An identifier of a record in another department, indexed for lineage traces."""
    return Column(name, String(length), nullable=nullable, index=True)


def _population() -> MetaData:
    metadata = MetaData()
    Table(
        "pop_district",
        metadata,
        Column("code", String(6), primary_key=True),
        Column("name", String(32), nullable=False),
        Column("type", String(8), nullable=False),
        **_MYSQL,
    )
    Table(
        "pop_person",
        metadata,
        # Keyed by the index of the encrypted ID number: known without decrypting, one per person.
        _sealed("id_number"),
        _index("id_number", nullable=False, primary_key=True),
        Column("name", String(32), nullable=False),
        Column("gender", String(2), nullable=False),
        Column("ethnicity", String(16), nullable=False),
        Column("birth_date", Date, nullable=False),
        *_indexed("mobile"),
        Column("district_code", String(6), ForeignKey("pop_district.code"), nullable=False, index=True),
        Column("address", String(128), nullable=False),
        Column("household_id", String(12), nullable=False, index=True),
        Column("relation_to_head", String(8), nullable=False),
        Column("registered_at", Date, nullable=False),
        **_MYSQL,
    )
    return metadata


def _civil_affairs() -> MetaData:
    metadata = MetaData()
    Table(
        "ca_assistance_case",
        metadata,
        Column("case_id", String(16), primary_key=True),
        *_id_number("recipient_id_number"),
        _sealed("recipient_name"),
        Column("assistance_type", String(16), nullable=False),
        Column("status", String(8), nullable=False),
        _money("monthly_amount", nullable=True),
        Column("start_date", Date, nullable=False),
        Column("end_date", Date),
        Column("district_code", String(6), nullable=False, index=True),
        Column("household_size", Integer, nullable=False),
        _ref("request_id", 20),
        **_MYSQL,
    )
    # Exactly twelve fields (and the blind indexes of two): the benchmarks' wide-list workload
    # reads all twelve.
    Table(
        "ca_service_delivery",
        metadata,
        Column("delivery_id", String(16), primary_key=True),
        Column("case_id", String(16), ForeignKey("ca_assistance_case.case_id"), nullable=False, index=True),
        _sealed("recipient_name"),
        *_id_number("recipient_id_number"),
        *_indexed("recipient_mobile"),
        Column("service_type", String(32), nullable=False),
        Column("delivered_at", DateTime, nullable=False),
        _money("amount"),
        Column("district_code", String(6), nullable=False, index=True),
        Column("status", String(8), nullable=False),
        _ref("request_id", 20),
        _ref("expenditure_id", nullable=False),
        **_MYSQL,
    )
    return metadata


def _human_resources() -> MetaData:
    metadata = MetaData()
    Table(
        "hr_pension_account",
        metadata,
        _sealed("id_number"),
        _index("id_number", nullable=False, primary_key=True),
        Column("account_no", String(16), nullable=False, unique=True),
        Column("scheme", String(16), nullable=False),
        Column("insured_since", Date, nullable=False),
        _money("contribution_base", nullable=True),
        _money("monthly_pension", nullable=True),
        Column("status", String(8), nullable=False),
        **_MYSQL,
    )
    Table(
        "hr_employment",
        metadata,
        Column("record_id", String(16), primary_key=True),
        *_id_number("id_number"),
        Column("employer", String(64), nullable=False),
        Column("sector", String(32), nullable=False),
        Column("start_date", Date, nullable=False),
        Column("end_date", Date),
        **_MYSQL,
    )
    Table("hr_service_delivery", metadata, *_delivery_columns(), **_MYSQL)
    return metadata


def _delivery_columns(*extra: Column[Any]) -> list[Column[Any]]:
    """The columns human resources and education deliveries share."""
    return [
        Column("delivery_id", String(16), primary_key=True),
        *extra,
        *_id_number("id_number"),
        Column("recipient_name", String(32), nullable=False),
        Column("service_type", String(32), nullable=False),
        Column("delivered_at", DateTime, nullable=False),
        _money("amount"),
        Column("district_code", String(6), nullable=False, index=True),
        Column("status", String(8), nullable=False),
        _ref("request_id", 20),
        _ref("expenditure_id", nullable=False),
    ]


def _health() -> MetaData:
    metadata = MetaData()
    Table(
        "hlth_visit",
        metadata,
        Column("visit_id", String(16), primary_key=True),
        *_id_number("patient_id_number"),
        Column("patient_name", String(32), nullable=False),
        Column("hospital", String(64), nullable=False),
        Column("visit_type", String(8), nullable=False),
        Column("visit_date", Date, nullable=False),
        Column("discharge_date", Date),
        Column("department_name", String(16), nullable=False),
        _sealed("diagnosis"),
        _money("cost"),
        _money("insurance_paid"),
        **_MYSQL,
    )
    return metadata


def _education() -> MetaData:
    metadata = MetaData()
    Table(
        "edu_student",
        metadata,
        Column("student_id", String(16), primary_key=True),
        *_id_number("id_number", unique=True),
        Column("name", String(32), nullable=False),
        Column("school", String(64), nullable=False),
        Column("stage", String(8), nullable=False),
        Column("grade", String(16), nullable=False),
        Column("enrolled_at", Date, nullable=False),
        **_MYSQL,
    )
    Table(
        "edu_student_aid",
        metadata,
        Column("aid_id", String(16), primary_key=True),
        Column("student_id", String(16), ForeignKey("edu_student.student_id"), nullable=False, index=True),
        *_id_number("student_id_number"),
        Column("student_name", String(32), nullable=False),
        Column("school", String(64), nullable=False),
        Column("aid_type", String(32), nullable=False),
        Column("academic_year", String(9), nullable=False),
        Column("semester", String(4), nullable=False),
        _money("amount"),
        Column("granted_at", Date, nullable=False),
        **_MYSQL,
    )
    aid = Column("aid_id", String(16), ForeignKey("edu_student_aid.aid_id"), nullable=False, index=True)
    Table("edu_service_delivery", metadata, *_delivery_columns(aid), **_MYSQL)
    return metadata


def _finance() -> MetaData:
    metadata = MetaData()
    Table(
        "fin_budget_line",
        metadata,
        Column("line_id", String(16), primary_key=True),
        Column("department", String(32), nullable=False, index=True),
        Column("fiscal_year", Integer, nullable=False),
        Column("program", String(64), nullable=False),
        _money("amount"),
        Column("approved_at", Date, nullable=False),
        **_MYSQL,
    )
    Table(
        "fin_expenditure",
        metadata,
        Column("expenditure_id", String(16), primary_key=True),
        Column("budget_line_id", String(16), ForeignKey("fin_budget_line.line_id"), nullable=False, index=True),
        Column("department", String(32), nullable=False, index=True),
        Column("payee", String(64), nullable=False),
        _money("amount"),
        Column("paid_at", DateTime, nullable=False),
        Column("purpose", String(128), nullable=False),
        **_MYSQL,
    )
    return metadata


def _hotline() -> MetaData:
    metadata = MetaData()
    Table(
        "hl_request",
        metadata,
        Column("request_id", String(20), primary_key=True),
        *_id_number("caller_id_number"),
        Column("caller_name", String(32), nullable=False),
        *_indexed("caller_mobile"),
        Column("received_at", DateTime, nullable=False, index=True),
        Column("channel", String(16), nullable=False),
        Column("category", String(16), nullable=False),
        _sealed("content"),
        Column("district_code", String(6), nullable=False, index=True),
        Column("assigned_department", String(32), nullable=False),
        Column("deadline", DateTime, nullable=False),
        Column("status", String(8), nullable=False),
        Column("closed_at", DateTime),
        Column("satisfaction", Integer),
        **_MYSQL,
    )
    Table(
        "hl_feedback",
        metadata,
        Column("feedback_id", String(16), primary_key=True),
        Column("request_id", String(20), ForeignKey("hl_request.request_id"), nullable=False, index=True),
        Column("delivery_ref", String(64), index=True),
        Column("satisfaction", Integer, nullable=False),
        Column("comment", String(256), nullable=False),
        Column("submitted_at", DateTime, nullable=False),
        **_MYSQL,
    )
    return metadata


METADATA: dict[str, MetaData] = {
    "population": _population(),
    "civil_affairs": _civil_affairs(),
    "human_resources": _human_resources(),
    "health": _health(),
    "education": _education(),
    "finance": _finance(),
    "hotline": _hotline(),
}
DEPARTMENTS = tuple(METADATA)
