"""Small groups of persons, suppressed in an aggregate's answer before it is ordered or paged.

A group (or the total) whose rows are about fewer than k distinct persons (counted on the
person field's blind index) is suppressed: its measures are withheld. Within one answer no
suppressed cell may be recovered by subtraction:

- if exactly one group is suppressed, the next smallest (by persons, then rows, then the
  statement's order) is suppressed too, so the total minus the shown groups gives only the sum
  of two hidden cells;
- the total minus the shown groups is a cell of its own: the rows of every suppressed group. It
  must be about at least k distinct persons, or the total is withheld. The answer does not say
  how many distinct persons those rows hold (a person with rows in two groups is one person in
  each, and summing the groups' counts would count them twice: the hole this rule once had),
  so the rule uses what it can prove: the total's distinct persons minus the distinct persons
  of each shown group is a lower bound (every person of the total is in the suppressed rows or
  in some shown group), exact when no person has rows in two groups;
- the total is also withheld when the suppressed groups hold one row each: their number and the
  difference of counts would then give every suppressed group's count (1).

What this cannot prevent, differencing across queries (the same count under two filters that
differ by one person), and what an operator can do about it: docs/aggregates.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.access.aggregate import Cell

# The label of the hidden measure counting a group's distinct persons (field names start with a
# letter, so it names no field).
PERSONS = "_persons"
# The threshold where the policy sets none.
DEFAULT_MIN_GROUP = 5


@dataclass(frozen=True)
class Suppression:
    """Count distinct values of `column` (the person field's blind index) per group; fewer
    than `k` suppresses the group."""

    column: str
    k: int


def suppress(groups: Sequence[Cell], total: Cell | None, rule: Suppression) -> int:
    """Marks the cells to suppress, over every group of the answer; the number of groups
    suppressed."""
    k = rule.k
    for cell in groups:
        cell.suppressed = cell.values[PERSONS] < k
    hidden = [cell for cell in groups if cell.suppressed]
    if len(hidden) == 1 and len(groups) > 1:
        shown = [cell for cell in groups if not cell.suppressed]
        partner = min(shown, key=lambda cell: (cell.values[PERSONS], cell.values["count"]))
        partner.suppressed = True
        hidden.append(partner)
    if total is not None:
        total.suppressed = total.values[PERSONS] < k or (bool(hidden) and _gives_away(groups, hidden, total, k))
    return len(hidden)


def _gives_away(groups: Sequence[Cell], hidden: Sequence[Cell], total: Cell, k: int) -> bool:
    """Whether the total, beside the shown groups, would give a suppressed cell away."""
    shown_persons = sum(cell.values[PERSONS] for cell in groups if not cell.suppressed)
    # At least this many distinct persons have rows in the suppressed groups (never more than
    # the true number, which one statement cannot tell without a second pass over the rows).
    remainder_persons: int = total.values[PERSONS] - shown_persons
    remainder_rows: int = sum(cell.values["count"] for cell in hidden)
    return remainder_persons < k or remainder_rows <= len(hidden)
