"""The bound on the work of one request's reports: the per-key rows their aggregates return.

The reports join per-key results in the hub (per expenditure, per answered request), so their
work grows with the data in scope, not with the lines shown. Every report field of a request
draws on one count (aliases share it): each statement's groups are charged as they arrive, and a
read whose size is known beforehand (the expenditures counted per line) is checked before it
runs. Past the bound the request is refused, LIMIT_EXCEEDED with `limit` and `value`, never
answered with figures cut short.
"""

from __future__ import annotations

from hub.errors import LimitExceeded

# The values one per-key row carries (its keys and measures: an expenditure and its line, a
# count and a sum), as demand control prices rows: a report costs its bound times these.
ROW_VALUES = 4


class ReportRows:
    """One request's count of report rows against `limit`."""

    __slots__ = ("limit", "spent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def expect(self, rows: int) -> None:
        """Refuses before the read when `rows` more would pass the bound."""
        self._over(self.spent + rows)

    def charge(self, rows: int) -> None:
        """Counts `rows` rows read; past the bound, the request is refused."""
        self.spent += rows
        self._over(self.spent)

    def _over(self, value: int) -> None:
        if value > self.limit:
            raise LimitExceeded(
                f"the accountability reports of this request would join more than {self.limit} per-key rows; "
                "narrow them with a filter (fiscal year, department, district, period)",
                {"limit": self.limit, "value": value},
            )
