"""bench.aggregates' report: with --trail-off-too, the trail-off hub's numbers and the trail's
share stand beside the hub's, against the same limit; without it, the table keeps its form."""

from __future__ import annotations

import pytest

from bench.aggregates import _result, table
from bench.measure import Timings

LOAD = (1.0, 1.0, 1.0)


def test_the_trail_off_hub_is_reported_beside_the_hub_with_the_trails_share() -> None:
    hub = Timings("hub", (10.0, 12.0, 14.0), 100)
    limit = Timings("limit", (5.0, 6.0, 7.0), 100)
    quiet = Timings("hub-trail-off", (6.0, 9.0, 7.0), 100)
    result = _result("expenditures", 1, 52, [hub, limit, quiet], [4.0, 1.0, 3.0], 3, LOAD)
    assert result["ratio_of_medians"] == pytest.approx(2.0)
    off = result["trail_off"]
    assert off["ratio_of_medians"] == pytest.approx(7.0 / 6.0)
    # The hub's median 12 ms, 7 ms without the trail: the trail is 5/12 of it.
    assert off["trail_share"] == pytest.approx(5 / 12)
    assert off["cpu_ms_per_request"] == 3.0
    lines = table([result]).splitlines()
    assert "trail off: hub/limit" in lines[0] and "trail's share" in lines[0]
    assert lines[2].endswith("| 7.0 (6.0-9.0) | 1.17x | 3.0 | 42% |")


def test_without_the_trail_off_hub_the_table_keeps_its_columns() -> None:
    hub = Timings("hub", (10.0,), 100)
    limit = Timings("limit", (5.0,), 100)
    result = _result("deliveries", 1, 144, [hub, limit], [4.0, 1.0], 1, LOAD)
    assert "trail_off" not in result
    lines = table([result]).splitlines()
    assert "trail off" not in lines[0]
    assert lines[0].count("|") == lines[2].count("|") == 9
