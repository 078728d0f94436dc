"""What both reports read: every group of one aggregate, under the caller's access plan.

Each read goes through `hub.access.aggregate` (access checks before SQL, row rules, the
suppression of small groups of persons), asking for every group at once: at most the rows left
under the request's bound on report rows (bound.py), which every group read counts against;
past it LIMIT_EXCEEDED. A report figure built from a suppressed cell is itself
withheld: `Figures` carries which figures were suppressed or withheld, and why.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.aggregates import Bucket
from hub.access.aggregate import AggregateRead, Cell, TooManyGroups, aggregate
from hub.access.plan import Decision
from hub.access.read import Reader, RequestAccess
from hub.accountability.bound import ReportRows
from hub.catalog import EntityInfo
from hub.catalog.filters import MAX_IN, FilterSpec


@dataclass
class Reading:
    """One request's reader and access, and what its reports left out."""

    reader: Reader
    request: RequestAccess
    # The request's bound on report rows, shared by every report field it asks (bound.py).
    rows: ReportRows
    # Figures (by name) left null because a cell behind them was suppressed.
    suppressed: set[str] = field(default_factory=set)
    # Figures left null because a field behind them is not released plain to the caller.
    withheld: set[str] = field(default_factory=set)
    groups_suppressed: int = 0
    aggregated: set[str] = field(default_factory=set)

    def plain(self, entity: EntityInfo, name: str) -> bool:
        return self.request.plan.field(entity.id, name).decision is Decision.PLAIN

    async def cells(
        self,
        entity: EntityInfo,
        filter_spec: FilterSpec | None,
        group_by: Sequence[str],
        measures: Sequence[tuple[str, str]] = (),
        bucket: tuple[str, Bucket] | None = None,
    ) -> list[Cell]:
        """Every group of `entity` under `filter_spec`: one statement, bounded by the rows left
        under the request's bound (not by a page: the groups are joined, never shown)."""
        rows = self.rows
        rows.expect(0)
        left = rows.limit - rows.spent
        read = AggregateRead(entity, filter_spec, group_by, bucket, measures, want_groups=True, bound=left)
        try:
            result = await aggregate(self.reader, self.request, read)
        except TooManyGroups:
            rows.charge(left + 1)  # past the bound: refused with the bound and the least value
            raise
        rows.charge(len(result.groups))
        self.groups_suppressed += result.suppressed
        self.aggregated.update(f"{entity.id}.{name}" for name in result.fields)
        return result.groups

    async def cells_in(
        self,
        entity: EntityInfo,
        name: str,
        values: Iterable[Any] | None,
        rest: FilterSpec,
        group_by: Sequence[str],
        measures: Sequence[tuple[str, str]] = (),
    ) -> list[Cell]:
        """As `cells`, for rows whose `name` is among `values`: one statement per MAX_IN values
        (`values` None: every row where `name` is present, one statement)."""
        if values is None:
            return await self.cells(entity, {**rest, name: {"isNull": False}}, group_by, measures)
        ordered = sorted(set(values))
        out: list[Cell] = []
        for start in range(0, len(ordered), MAX_IN):
            chunk = ordered[start : start + MAX_IN]
            out.extend(await self.cells(entity, {**rest, name: {"in": chunk}}, group_by, measures))
        return out


def percentile(values: Sequence[float], share: float) -> float | None:
    """The `share` quantile by linear interpolation between the closest ranks (the 'inclusive'
    method: the smallest value is the 0th, the largest the 100th); None without values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    if share == 0.5:
        return statistics.median(values)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(share * 100) - 1]
