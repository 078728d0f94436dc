"""The Casbin facade: the only module that imports casbin.

An `Enforcer` is built once per policy snapshot (rules and role hierarchy) and never changed
afterwards: a policy change builds a new one and swaps the reference, so a request decides
everything on one snapshot. Questions are asked per role; `outcome` tells an explicit deny
from the absence of an allow, so deny wins across a principal's roles too.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import casbin
from casbin.util import key_match

from hub.policy.snapshot import Snapshot
from hub.policy.terms import POLICIES

# pycasbin parses its matcher with `ast.parse` on every question, and CPython 3.11 keeps the
# AST converter's recursion depth per interpreter, not per thread: two threads asking at once
# (a request's decisions on the event loop, a policy change's mask-strength check in a worker
# thread) can fail with "SystemError: AST constructor recursion depth mismatch". One question at
# a time, process-wide; uncontended, the lock costs well under a microsecond.
_ASKING = threading.Lock()


@dataclass(frozen=True)
class Ask:
    """One question to the enforcer."""

    role: str
    caller_department: str
    owner_department: str
    entity: str
    item: str  # field or relation id
    tier: str  # L1..L4, or `relation`
    action: str


class Enforcer:
    def __init__(self, snapshot: Snapshot) -> None:
        model = casbin.model.Model()
        model.load_model_from_text((POLICIES / "model.conf").read_text(encoding="utf-8"))
        enforcer = casbin.Enforcer(model)
        # Hierarchy lines may name the domain `*`: every department.
        enforcer.add_named_domain_matching_func("g", key_match)
        rules = [rule.line() for rule in snapshot.rules]
        if rules:
            enforcer.add_named_policies("p", rules)
        grouping = [h.line() for h in snapshot.hierarchy]
        if grouping:
            enforcer.add_named_grouping_policies("g", grouping)
        self._casbin = enforcer

    def outcome(self, ask: Ask) -> tuple[str, list[str]]:
        """`allow`, `deny` (an explicit deny line) or `none`, with the deciding line."""
        with _ASKING:
            allowed, line = self._casbin.enforce_ex(*_values(ask))
        parts = [str(part) for part in line]
        if allowed:
            return "allow", parts
        return ("deny", parts) if parts else ("none", [])


def _values(ask: Ask) -> Sequence[str]:
    return (
        ask.role,
        ask.caller_department,
        ask.owner_department,
        ask.entity,
        ask.item,
        ask.tier,
        ask.action,
    )
