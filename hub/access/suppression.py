"""Small groups of persons, suppressed in an aggregate's answer before it is ordered or paged.

A group (or the total) whose rows are about fewer than k distinct persons (counted on the
person field's blind index) is suppressed: its measures are withheld. Within one answer no
suppressed cell may be recovered by subtraction:

- if exactly one group is suppressed, the next smallest (by persons, then rows, then the
  statement's order) is suppressed too, so the total minus the shown groups gives only the sum
  of two hidden cells;
- the total is withheld when it covers fewer than k persons itself, or when the suppressed
  groups together hold fewer than k persons (then the difference would be a small cell of its
  own). Persons are counted per group, so a person in two suppressed groups counts twice there:
  an overestimate, the one place the rule may release a difference over fewer than k persons.

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
        remainder = sum(cell.values[PERSONS] for cell in hidden)
        total.suppressed = total.values[PERSONS] < k or (bool(hidden) and remainder < k)
    return len(hidden)
