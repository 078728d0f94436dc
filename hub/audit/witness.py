"""A witness of the trail: another party that keeps the last tree head it saw and checks that
every newer one extends it (RFC 9162's consistency), so a log that was truncated or whose
history was rewritten is caught by someone other than the hub.

`witness(fetch, public_raw, state)` fetches the current signed head, checks its signature and
its consistency with the head in `state`, and returns the head to keep. `fetch(path)` returns
the JSON of a GET on the hub (the command line uses httpx; tests use the app's test client).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from hub.audit.heads import TreeHead
from hub.audit.merkle import verify_consistency


class WitnessAlarm(Exception):
    """The hub's log is not an extension of what this witness saw (or its head is forged)."""


async def witness(
    fetch: Callable[[str], Awaitable[Any]], public_raw: bytes, state: TreeHead | None
) -> tuple[TreeHead, str]:
    """The head to keep, and a line saying what was checked; WitnessAlarm when the log breaks."""
    head = TreeHead.parse(await fetch("/audit/tree-head"))
    if not head.verifies(public_raw):
        raise WitnessAlarm(f"the tree head of {head.size} events is not signed by the given key")
    if state is None:
        return head, f"first tree head seen: {head.size} events; kept"
    if head.size < state.size:
        raise WitnessAlarm(f"the log shrank from {state.size} to {head.size} events: it was truncated")
    if head.size == state.size:
        if head.root != state.root:
            raise WitnessAlarm(f"the log of {head.size} events has another root than before: history was rewritten")
        return head, f"no new events since {state.size}; the root is unchanged"
    if state.size == 0:
        return head, f"the log grew from 0 to {head.size} events"
    answer = await fetch(f"/audit/proof/consistency?first={state.size}&second={head.size}")
    proof = [base64.b64decode(item, validate=True) for item in answer["consistency"]]
    if not verify_consistency(state.size, head.size, state.root, head.root, proof):
        raise WitnessAlarm(
            f"the log of {head.size} events is not an extension of the one of {state.size} events: "
            "history was rewritten"
        )
    return head, f"the log grew from {state.size} to {head.size} events and extends the one seen before"
