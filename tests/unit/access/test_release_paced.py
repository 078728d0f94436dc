"""A large page is released a slice at a time, with turns for the event loop between slices, and
released exactly as in one go: the same rows, masks, nulls for values that fail their integrity
check, rows left out, and the same access record."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import URL

from connectors.base import Page
from connectors.pacing import SLICE_ROWS
from hub.access.plan import Decision, Planner, Selection, Verdict
from hub.access.record import AccessRecord
from hub.access.release import Releaser
from hub.auth.principal import Principal
from hub.catalog import load_catalog
from tests.unit.access.test_release_encrypted_fields import CATALOG_DIR, Policy, encrypt_rows, make_keyring

ROWS = 5 * SLICE_ROWS
NAMES = ["idNumber", "name", "mobile", "district"]


def people() -> list[dict[str, Any]]:
    return [
        {
            "id_number": f"110105{n:012d}",
            "name": f"居民{n}",
            "mobile": None if n % 7 == 0 else f"138{n:08d}",
            "district": "Chaoyang" if n % 2 else "Haidian",
        }
        for n in range(ROWS)
    ]


def released_as_dicts(released: Any) -> dict[str, Any]:
    return {
        "rows": released.rows,
        "withheld": released.withheld,
        "masked": released.masked,
        "unreadable": released.unreadable,
        "left_out": released.left_out,
        "kept": released.kept,
        "recorded": released.recorded,
    }


async def test_a_large_page_released_in_slices_is_released_as_in_one_go(hub_db: URL) -> None:
    catalog = load_catalog(CATALOG_DIR)
    keyring = await asyncio.to_thread(make_keyring, hub_db, catalog)
    entity = catalog.entity("registry.Person")
    rows = encrypt_rows(keyring, entity, people())
    # In later slices: a name that is another row's ciphertext (it fails its check: null, and
    # counted), and a row whose stored key is missing (left out).
    rows[3 * SLICE_ROWS + 17]["name"] = rows[3 * SLICE_ROWS + 18]["name"]
    rows[4 * SLICE_ROWS + 3][entity.table.key] = None
    plan = Planner(catalog, lambda: Policy({"mobile": Verdict(Decision.MASKED, "no grant")})).plan(
        Principal("app", "civil_affairs", ("department_app",)), None, Selection({entity.id: frozenset(NAMES)}, {})
    )
    releaser = Releaser(lambda: keyring)

    whole_record = AccessRecord("app", "civil_affairs", None, plan.policy_version)
    whole = releaser.release(plan, whole_record, entity, Page(rows), NAMES)

    turns: list[bool] = []
    paced_record = AccessRecord("app", "civil_affairs", None, plan.policy_version)
    # A callback ready when the release starts: paced, it runs before the release ends.
    asyncio.get_running_loop().call_soon(lambda: turns.append(paced_record.rows[entity.id] > 0))
    paced = await releaser.release_paced(plan, paced_record, entity, Page(rows), NAMES)

    assert released_as_dicts(paced) == released_as_dicts(whole)
    # The name that is not its cell's (and the keyless row's values, whose key they were
    # sealed under is gone) are null and counted.
    assert paced.unreadable["name"] == 2
    assert paced.left_out == 1
    assert paced.masked == ["mobile"]
    assert paced_record == whole_record
    assert turns == [True]
