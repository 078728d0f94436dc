"""Pages read column by column: the same rows, values and release as row by row.

The SQL connector hands the reader its pages column-wise and reads each column at once; these
tests hold that to what reading row by row, value by value, gives.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.base import ColumnSpec, Kind, Page
from connectors.values import read_column, reader
from hub.access.plan import Decision, Planner, ReleaseEverything, Selection
from hub.access.record import AccessRecord
from hub.access.release import Releaser
from hub.auth.principal import Principal
from hub.catalog import Catalog
from hub.crypto.keyring import Keyring

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_page_of_columns_reads_as_its_rows() -> None:
    page = Page.of_columns({"id": (1, 2), "name": ["a", None]}, 2, has_more=True)
    assert page.rows == [{"id": 1, "name": "a"}, {"id": 2, "name": None}]
    assert list(page.column("name")) == ["a", None]
    assert (page.count, page.has_more) == (2, True)
    assert page.has("id") and not page.has("city")
    with pytest.raises(KeyError):
        page.column("city")


def test_a_page_of_rows_reads_column_by_column() -> None:
    page = Page([{"id": 1, "name": "a"}, {"id": 2, "name": None}])
    assert page.column("id") == [1, 2]
    assert page.count == 2 and not page.has_more
    assert page.has("name") and not page.has("city")
    assert page == Page.of_columns({"id": [1, 2], "name": ["a", None]}, 2)
    assert not Page([]).has("id")


def test_a_page_of_no_columns_still_counts_its_rows() -> None:
    assert Page.of_columns({}, 3).rows == [{}, {}, {}]


NAIVE = dt.datetime(2024, 3, 1, 8, 30)
# The second of a repeated wall-clock hour (fold=1) stays the second once it has a zone.
LATER = dt.datetime(2024, 3, 1, 8, 30, 0, 5, fold=1)
AWARE = dt.datetime(2024, 3, 1, 0, 30, tzinfo=dt.UTC)
# What drivers return for each kind, in every form a column may hold (SQLite keeps decimals as
# floats and date-times as text, MariaDB booleans as integers), nulls among them.
COLUMNS: list[tuple[Kind, list[Any]]] = [
    (Kind.STRING, ["a", None, ""]),
    (Kind.INT, [1, None, 2]),
    (Kind.INT, [1, True, None]),
    (Kind.FLOAT, [1.5, None, -0.0]),
    (Kind.FLOAT, [1.5, 2, Decimal("2.25")]),
    (Kind.DECIMAL, [Decimal("12.5"), None, Decimal("0.125"), Decimal("7")]),
    (Kind.DECIMAL, [Decimal("12.5"), 0.1, 2.675, 3, None]),
    (Kind.BOOL, [True, False, None]),
    (Kind.BOOL, [1, 0, None]),
    (Kind.DATE, [dt.date(2024, 1, 2), None]),
    (Kind.DATE, [dt.date(2024, 1, 2), NAIVE, "2024-01-03"]),
    (Kind.DATETIME, [NAIVE, None, AWARE, LATER]),
    (Kind.DATETIME, [NAIVE, "2024-03-01 08:30:00", "2024-03-01T08:30:00+00:00", None]),
    (Kind.BYTES, [b"\x00", None, b""]),
    (Kind.BYTES, [b"\x00", bytearray(b"\x01"), memoryview(b"\x02")]),
]


@pytest.mark.parametrize(("kind", "values"), COLUMNS)
def test_a_column_read_at_once_reads_as_each_value_alone(kind: Kind, values: list[Any]) -> None:
    spec = ColumnSpec("c", kind, scale=2)
    read = reader(spec, SHANGHAI)
    alone = [value if read is None else read(value) for value in values]
    at_once = list(read_column(spec, SHANGHAI, values))
    assert at_once == alone
    # Equal is not enough: a decimal keeps its scale and a date-time its zone and fold.
    assert [(type(v), str(v), getattr(v, "tzinfo", None), getattr(v, "fold", None)) for v in at_once] == [
        (type(v), str(v), getattr(v, "tzinfo", None), getattr(v, "fold", None)) for v in alone
    ]


def test_a_page_of_columns_is_released_as_its_rows(small_catalog: Catalog) -> None:
    entity = small_catalog.entity("registry.Person")
    names = ["idNumber", "name", "income", "registeredAt", "active"]
    plan = Planner(small_catalog, ReleaseEverything).plan(
        Principal("app", "welfare"), None, Selection({entity.id: frozenset(names)}, {})
    )
    rows = [
        {
            "id_number": "11010519850202567x",
            "name": "李华",
            "income": Decimal("1200.50"),
            "registered_at": dt.datetime(2024, 3, 1, 8, tzinfo=SHANGHAI),
            "active": True,
        },
        {"id_number": "110105199001011234", "name": None, "income": None, "registered_at": None, "active": None},
    ]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    keyring = Keyring({}, {"resident_id": b"i" * 32}, b"m" * 32)
    releaser = Releaser(lambda: keyring)
    by_rows = AccessRecord("app", "welfare", None, plan.policy_version)
    by_columns = AccessRecord("app", "welfare", None, plan.policy_version)
    expected = releaser.release(plan, by_rows, entity, rows, names)
    released = releaser.release(plan, by_columns, entity, Page.of_columns(columns, 2), names)
    assert released == expected
    assert released.rows[0] == {
        "idNumber": "11010519850202567x",
        "name": "李华",
        "income": Decimal("1200.50"),
        "registeredAt": dt.datetime(2024, 3, 1, 8, tzinfo=SHANGHAI),
        "active": True,
    }
    assert by_columns == by_rows
    assert len(by_columns.persons) == 2


def test_a_release_done_again_is_counted_once_in_the_access_record() -> None:
    record = AccessRecord("app", "audit", None, "1")
    # An earlier read of the same entity, then the read that is done again.
    record.rows["e"] += 2
    record.add_columns("e", [("name", Decision.PLAIN)], 2)
    before = (dict(record.rows), dict(record.released))
    columns = [("name", Decision.PLAIN), ("mobile", Decision.MASKED)]
    record.rows["e"] += 3
    record.add_columns("e", columns, 3)
    record.undo_columns("e", columns, 3)
    assert (dict(record.rows), dict(record.released)) == before
    record.rows["e"] += 3
    record.add_columns("e", columns, 3)
    assert record.summary()["rows"] == {"e": 5}
    assert record.summary()["released"] == [
        {"entity": "e", "field": "mobile", "level": "MASKED", "count": 3},
        {"entity": "e", "field": "name", "level": "PLAIN", "count": 5},
    ]
