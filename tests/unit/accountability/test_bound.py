"""The bound on one request's report rows: counted as statements return, checked before a
read of known size, refused past it with the bound and the value, never cut."""

from __future__ import annotations

import pytest

from hub.accountability.bound import ReportRows
from hub.errors import LimitExceeded


def test_rows_up_to_the_bound_are_answered() -> None:
    rows = ReportRows(100)
    rows.charge(60)
    rows.expect(40)
    rows.charge(40)
    assert rows.spent == 100


def test_a_read_of_known_size_past_the_bound_is_refused_before_it_runs() -> None:
    rows = ReportRows(100)
    rows.charge(60)
    with pytest.raises(LimitExceeded) as refused:
        rows.expect(41)
    assert refused.value.extensions == {"limit": 100, "value": 101}
    assert rows.spent == 60  # nothing was counted for the read that did not run


def test_rows_past_the_bound_refuse_the_request_with_limit_and_value() -> None:
    rows = ReportRows(100)
    rows.charge(90)
    with pytest.raises(LimitExceeded) as refused:
        rows.charge(30)
    assert refused.value.code == "LIMIT_EXCEEDED"
    assert refused.value.extensions == {"limit": 100, "value": 120}


def test_once_past_the_bound_every_later_read_is_refused() -> None:
    rows = ReportRows(10)
    with pytest.raises(LimitExceeded):
        rows.charge(11)
    with pytest.raises(LimitExceeded):
        rows.expect(0)
