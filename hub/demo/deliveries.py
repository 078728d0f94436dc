"""What every department's service deliveries share: status, numbering and global references."""

from __future__ import annotations

import random
from typing import Any

DELIVERED, FAILED = "已发放", "发放失败"


def status(rng: random.Random) -> str:
    # About one payment in a hundred bounces (a closed bank card) and is paid again later.
    return FAILED if rng.random() < 0.012 else DELIVERED


def number(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Sort deliveries by time and number them, so key order is the order they happened in."""
    rows.sort(key=lambda r: (r["delivered_at"], r["service_type"], r["recipient_name"], r["amount"]))
    for index, row in enumerate(rows, 1):
        row["delivery_id"] = f"{prefix}{index:06d}"
    return rows


def reference(department: str, delivery_id: str) -> str:
    """The delivery's global reference, `department:entity:key`, as lineage names it."""
    return f"{department}:ServiceDelivery:{delivery_id}"
