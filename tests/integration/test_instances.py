"""Three hub processes on loopback over one PostgreSQL hub database: a change made through any
instance (a policy edit, a token revocation, a trusted document's removal) is enforced by every
instance within a second (a key rotation too, and without its notification by the periodic
check); requests that run while the policy changes are each decided on one version, none on
a stale one past the bound; an instance that cannot confirm it holds every
change withholds L3 and L4 fields and is not ready until it can.

Propagation times are printed (run with -s to see them); bench/propagation.py measures them
over 100 edits.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from hub.auth.registry import revoke_tokens
from hub.catalog.loader import load_catalog
from hub.crypto.cells import FieldCells, row_key_text
from hub.crypto.keyring import load_keyring
from hub.crypto.master import read_master_key_file
from hub.crypto.rotation import plan_rotation, rotate
from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import Workspace
from hub.instances.feed import APPLICATION_NAME
from hub.trusted.service import register_document, remove_document
from tests.integration.instances import Fleet, fleet, prepare
from tests.integration.policy_fixtures import ADMIN, CASES, CHANGE, rule
from tests.servers import fresh_database

HEALTH, CIVIL = "health-app", "civil-affairs-app"
CASE = "{ civilAffairsAssistanceCases(first: 3, orderBy: [CASE_ID_ASC]) { nodes { caseId assistanceType } } }"
NAMES = "{ civilAffairsAssistanceCases(first: 3, orderBy: [CASE_ID_ASC]) { nodes { caseId assistanceType recipientName } } }"
# The edit toggled: health's app (a department app) denied the cases' assistance type (L2).
DENY = rule("department_app", "*", f"{CASES}.assistanceType", "read", "deny")
# A change must reach every instance within this (the promise).
WITHIN_S = 1.0


@pytest.fixture(scope="module")
def three(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("instances")
    url = fresh_database("postgresql", "hub_it_instances")
    tokens = prepare(demo_workspace, url, folder)
    with fleet(demo_workspace, url, tokens, folder) as running:
        yield running


def version(response: httpx.Response) -> str:
    return str(response.json()["extensions"]["access"]["policyVersion"])


def edit(fleet_: Fleet, index: int, op: str) -> str:
    """ADD_RULE or REMOVE_RULE of DENY through instance `index`; the version it made."""
    variables = {"edits": [{"op": op, "rule": DENY}], "reason": "instances test"}
    result = fleet_.query(index, ADMIN, CHANGE, variables).json()
    assert "errors" not in result, result
    return str(result["data"]["changePolicy"]["version"])


def denied_now(fleet_: Fleet) -> bool:
    answer = fleet_.query(0, HEALTH, CASE).json()
    return all(node["assistanceType"] is None for node in answer["data"]["civilAffairsAssistanceCases"]["nodes"])


def wait_on_others(fleet_: Fleet, changed_by: int, done: Any) -> float:
    """Seconds until every other instance answers `done(response)` true (30 s at most)."""
    began = time.monotonic()
    waiting = {i for i in range(len(fleet_.instances)) if i != changed_by}
    while waiting and time.monotonic() - began < 30:
        for index in sorted(waiting):
            if done(fleet_.query(index, HEALTH, CASE)):
                waiting.discard(index)
    assert not waiting, f"instances {sorted(waiting)} never saw the change"
    return time.monotonic() - began


def test_three_instances_started_at_once_on_a_new_hub_database_seed_its_policy_once(three: Fleet) -> None:
    """The fixture started all three together on a hub database without a policy: each tried to
    seed version 1, one did, the others loaded it and are ready."""

    async def seeded() -> list[str]:
        connection = await asyncpg.connect(three.url.set(drivername="postgresql").render_as_string(False))
        try:
            rows = await connection.fetch("SELECT reason FROM hub_policy_change WHERE version = 1")
            return [row[0] for row in rows]
        finally:
            await connection.close()

    assert asyncio.run(seeded()) == ["seeded from policies/default.yaml"]
    assert all(three.readyz(i).status_code == 200 for i in range(3))


def test_a_policy_edit_through_any_instance_is_enforced_by_every_instance_within_a_second(three: Fleet) -> None:
    times = []
    op = "REMOVE_RULE" if denied_now(three) else "ADD_RULE"
    for n in range(10):
        by = n % 3
        made = edit(three, by, op)
        times.append(wait_on_others(three, by, lambda r, v=made: version(r) == v))
        op = "REMOVE_RULE" if op == "ADD_RULE" else "ADD_RULE"
    print(
        f"\npropagation over 10 edits: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
    )
    assert max(times) < WITHIN_S


def test_requests_during_edits_are_each_decided_on_one_version_and_none_on_a_stale_one(three: Fleet) -> None:
    """Six clients (two per instance) read while twelve edits land through the instances in
    turn. Each answer is checked against the version it names (the deny rule present or not in
    that version), and no request that began more than the bound after a version was committed
    is decided on an older one."""
    committed: dict[int, float] = {}  # version -> when its edit's answer arrived
    denied: dict[int, bool] = {}
    answers: list[tuple[float, int, bool]] = []  # (began, version, assistance type withheld)
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                began = time.monotonic()
                response = three.query(index, HEALTH, CASE, client=http)
                body = response.json()
                nodes = body["data"]["civilAffairsAssistanceCases"]["nodes"]
                withheld = all(node["assistanceType"] is None for node in nodes)
                if not withheld and any(node["assistanceType"] is None for node in nodes):
                    failures.append(f"a mixed answer: {body}")
                with lock:
                    answers.append((began, int(version(response)), withheld))

    start_version = int(version(three.query(0, HEALTH, CASE)))
    denied[start_version] = denied_now(three)
    threads = [threading.Thread(target=client, args=(i % 3,)) for i in range(6)]
    for thread in threads:
        thread.start()
    try:
        op = "REMOVE_RULE" if denied[start_version] else "ADD_RULE"
        for n in range(12):
            made = int(edit(three, n % 3, op))
            committed[made] = time.monotonic()
            denied[made] = op == "ADD_RULE"
            op = "REMOVE_RULE" if op == "ADD_RULE" else "ADD_RULE"
            time.sleep(0.15)
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    assert len(answers) > 100
    wrong = [(v, w) for _, v, w in answers if v in denied and denied[v] != w]
    assert wrong == [], "answers that do not match the version they name"
    unknown = {v for _, v, _ in answers if v not in denied}
    assert unknown == set()
    stale = [
        (began, v)
        for began, v, _ in answers
        if any(newer > v and began > at + WITHIN_S for newer, at in committed.items())
    ]
    assert stale == [], f"{len(stale)} requests decided on a version older than one committed over a second before"


def test_a_token_revoked_through_one_instance_is_refused_by_every_instance_within_a_second(
    three: Fleet, demo_workspace: Workspace
) -> None:
    # Each instance has the token cached (and its background refresh under way).
    for index in range(3):
        assert three.query(index, "human-resources-app", CASE).status_code == 200

    async def revoke() -> None:
        engine = hub_engine(three.url)
        try:
            async with sessions(engine)() as session, session.begin():
                await revoke_tokens(session, "human-resources-app")
        finally:
            await engine.dispose()

    asyncio.run(revoke())
    began = time.monotonic()
    waiting = {0, 1, 2}
    while waiting and time.monotonic() - began < 10:
        for index in sorted(waiting):
            if three.query(index, "human-resources-app", CASE).status_code == 401:
                waiting.discard(index)
    took = time.monotonic() - began
    print(f"\ntoken revocation reached every instance in {took * 1000:.0f} ms")
    assert not waiting
    assert took < WITHIN_S


def test_a_trusted_document_removed_through_one_instance_stops_on_every_instance_within_a_second(
    three: Fleet,
) -> None:
    """Without the notification an instance would run a document it checked up to 5 s ago."""
    text = "query Scale { civilAffairsAssistanceCases(first: 1) { nodes { caseId } } }"

    async def change(remove: bool) -> str:
        engine = hub_engine(three.url)
        try:
            async with sessions(engine)() as session, session.begin():
                found = await register_document(session, text, name="scale-test")
                if remove:
                    await remove_document(session, found)
                return found
        finally:
            await engine.dispose()

    document = asyncio.run(change(remove=False))
    for index in range(3):
        response = three.query(index, HEALTH, document)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json()
    asyncio.run(change(remove=True))
    began = time.monotonic()
    waiting = {0, 1, 2}
    while waiting and time.monotonic() - began < 10:
        for index in sorted(waiting):
            if three.query(index, HEALTH, document).status_code != 200:
                waiting.discard(index)
    took = time.monotonic() - began
    print(f"\ndocument removal reached every instance in {took * 1000:.0f} ms")
    assert not waiting
    assert took < WITHIN_S


def test_with_its_listener_killed_every_instance_still_follows_an_edit_and_stays_ready(three: Fleet) -> None:
    async def kill_listeners() -> int:
        connection = await asyncpg.connect(three.url.set(drivername="postgresql").render_as_string(False))
        try:
            killed = await connection.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
                APPLICATION_NAME,
                three.url.database,
            )
            return len(killed)
        finally:
            await connection.close()

    assert asyncio.run(kill_listeners()) == 3
    op = "REMOVE_RULE" if denied_now(three) else "ADD_RULE"
    made = edit(three, 0, op)
    took = wait_on_others(three, 0, lambda r: version(r) == made)
    # The fallback check runs every second; the listener reconnects meanwhile.
    assert took < 2.5
    assert all(three.readyz(i).status_code == 200 for i in range(3))


def test_an_instance_that_cannot_confirm_the_current_version_withholds_l3_and_l4_and_is_not_ready(
    three: Fleet,
) -> None:
    """The change serial locked by another session: neither the listener's check nor the
    fallback can read it. After the bound (3 s) every instance withholds L3 fields (the
    recipient's name) but still serves L2 ones, says so in the answer's policy version and
    answers /readyz with 503; once the lock goes, all is back within a few seconds."""
    before = three.query(0, CIVIL, NAMES).json()
    names = [node["recipientName"] for node in before["data"]["civilAffairsAssistanceCases"]["nodes"]]
    assert all(names), before

    async def block_then_release(blocked: asyncio.Event, release: asyncio.Event) -> None:
        connection = await asyncpg.connect(three.url.set(drivername="postgresql").render_as_string(False))
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE hub_change IN ACCESS EXCLUSIVE MODE")
                blocked.set()
                await release.wait()
        finally:
            await connection.close()

    results: dict[str, Any] = {}

    async def scenario() -> None:
        blocked, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(block_then_release(blocked, release))
        await blocked.wait()
        try:
            began = time.monotonic()
            while time.monotonic() - began < 15:
                ready = await asyncio.to_thread(three.readyz, 1)
                if ready.status_code == 503:
                    break
                await asyncio.sleep(0.2)
            results["waited"] = time.monotonic() - began
            results["ready"] = ready
            results["answer"] = await asyncio.to_thread(lambda: three.query(1, CIVIL, NAMES))
        finally:
            release.set()
            await holder

    asyncio.run(scenario())
    # Not before the bound: the first checks after the lock was taken had confirmed seconds ago.
    assert results["waited"] >= 2.0
    ready = results["ready"].json()
    assert results["ready"].status_code == 503
    assert ready["changes"]["state"] == "unconfirmed"
    answer = results["answer"].json()
    nodes = answer["data"]["civilAffairsAssistanceCases"]["nodes"]
    assert [node["recipientName"] for node in nodes] == [None] * len(nodes)
    assert all(node["assistanceType"] is not None or denied_now(three) for node in nodes)
    assert answer["extensions"]["access"]["policyVersion"].endswith("-unconfirmed")
    assert any("cannot confirm" in error["message"] for error in answer["errors"])

    began = time.monotonic()
    while time.monotonic() - began < 10 and three.readyz(1).status_code != 200:
        time.sleep(0.1)
    assert three.readyz(1).status_code == 200
    after = three.query(1, CIVIL, NAMES).json()
    assert [node["recipientName"] for node in after["data"]["civilAffairsAssistanceCases"]["nodes"]] == names


# --- key rotation -----------------------------------------------------------------------

ROTATED = "civil_affairs"
KEY_VERSION = re.compile(rf'^hub_data_key_version\{{department="{ROTATED}"\}} (\d+)', re.MULTILINE)


def key_version(fleet_: Fleet, index: int) -> int:
    """The newest data-key version of civil affairs instance `index` holds (its /metrics)."""
    page = httpx.get(
        f"{fleet_.instances[index].base}/metrics",
        headers={"Authorization": f"Bearer {fleet_.tokens[ADMIN]}"},
        timeout=10,
    )
    assert page.status_code == 200, page.text
    found = KEY_VERSION.search(page.text)
    assert found is not None, page.text[:2000]
    return int(found.group(1))


def wait_for_version(fleet_: Fleet, wanted: int, within: float) -> float:
    """Seconds until every instance holds `wanted` (`within` x 10 at most, then fail)."""
    began = time.monotonic()
    waiting = set(range(len(fleet_.instances)))
    while waiting and time.monotonic() - began < within * 10:
        waiting = {index for index in waiting if key_version(fleet_, index) != wanted}
    assert not waiting, f"instances {sorted(waiting)} never loaded version {wanted}"
    return time.monotonic() - began


@contextmanager
def first_name_under_newest_key(fleet_: Fleet, workspace: Workspace) -> Iterator[tuple[str, int]]:
    """The first case's recipient name re-encrypted in the department database under civil
    affairs' newest data key, as `hub keys reencrypt` would store it (the plain name and the
    version); put back afterwards, since the demo's databases serve the whole session."""
    catalog = load_catalog(workspace.manifests)
    entity = catalog.entity(f"{ROTATED}.AssistanceCase")
    item = entity.fields["recipientName"]
    assert (entity.table.name, item.column) == ("ca_assistance_case", "recipient_name")

    async def keyring() -> Any:
        engine = hub_engine(fleet_.url)
        try:
            async with sessions(engine)() as session:
                return await load_keyring(session, read_master_key_file(workspace.master_key_file))
        finally:
            await engine.dispose()

    keys = asyncio.run(keyring())
    database = workspace.root / f"{ROTATED}.db"
    with sqlite3.connect(database) as connection:
        case, stored = connection.execute(
            "SELECT case_id, recipient_name FROM ca_assistance_case ORDER BY case_id LIMIT 1"
        ).fetchone()
    row_key = row_key_text(entity, case)
    (plain,) = FieldCells(keys, entity, item).decrypt([stored], [row_key])
    assert isinstance(plain, str)
    rewritten = FieldCells(keys, entity, item).encrypt(plain, row_key)
    update = "UPDATE ca_assistance_case SET recipient_name = ? WHERE case_id = ?"
    with sqlite3.connect(database) as connection:
        connection.execute(update, (rewritten, case))
    try:
        yield plain, keys.current_version(ROTATED)
    finally:
        with sqlite3.connect(database) as connection:
            connection.execute(update, (stored, case))


# Without the assistance type, which other tests of the module deny and allow in turn.
FIRST_NAME = "{ civilAffairsAssistanceCases(first: 1, orderBy: [CASE_ID_ASC]) { nodes { caseId recipientName } } }"


def first_names(fleet_: Fleet, index: int) -> tuple[str | None, list[str]]:
    answer = fleet_.query(index, CIVIL, FIRST_NAME).json()
    first = answer["data"]["civilAffairsAssistanceCases"]["nodes"][0]["recipientName"]
    return first, [error["extensions"]["code"] for error in answer.get("errors", [])]


def test_a_key_rotated_with_hub_keys_reaches_every_instance_within_a_second_and_each_reads_values_under_it(
    three: Fleet, demo_workspace: Workspace
) -> None:
    before = key_version(three, 0)
    assert [key_version(three, i) for i in range(3)] == [before] * 3
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        {
            "HUB_DATABASE_URL": three.url.render_as_string(hide_password=False),
            "HUB_MANIFESTS": str(demo_workspace.manifests),
            "HUB_MASTER_KEY_FILE": str(demo_workspace.master_key_file),
        }
    )
    hub = Path(sys.executable).with_name("hub")
    done = subprocess.run(
        [str(hub), "keys", "rotate", "--department", ROTATED], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    took = wait_for_version(three, before + 1, WITHIN_S)
    print(f"\nkey rotation reached every instance in {took * 1000:.0f} ms")
    assert took < WITHIN_S
    with first_name_under_newest_key(three, demo_workspace) as (plain, version):
        assert version == before + 1
        for index in range(3):
            assert first_names(three, index) == (plain, [])


def test_an_instance_that_missed_a_rotations_notification_catches_up_by_the_periodic_check(
    three: Fleet, demo_workspace: Workspace
) -> None:
    """The rotation is committed with the tables' triggers off, and the change serial moved by
    hand: no NOTIFY is sent, as when every listener was down at the commit. Each instance's
    check of the serial (every HUB_CHANGE_POLL_SECONDS, 1 s) finds it moved and reloads."""
    before = key_version(three, 0)

    async def rotate_unannounced() -> None:
        engine = hub_engine(three.url)
        master = read_master_key_file(demo_workspace.master_key_file)
        try:
            async with sessions(engine)() as session, session.begin():
                # A superuser's session: triggers (so the NOTIFY) do not fire in it.
                await session.execute(text("SET LOCAL session_replication_role = replica"))
                await rotate(session, master, await plan_rotation(session, master, [ROTATED]))
                await session.execute(text("UPDATE hub_change SET serial = serial + 1 WHERE id = 1"))
        finally:
            await engine.dispose()

    asyncio.run(rotate_unannounced())
    # Read before any value under the new key exists, so no instance reloads because it met one.
    took = wait_for_version(three, before + 1, WITHIN_S)
    print(f"\nan unannounced key rotation reached every instance in {took * 1000:.0f} ms")
    # One interval of the check, and the reload, at most.
    assert took < 2.5
    with first_name_under_newest_key(three, demo_workspace) as (plain, version):
        assert version == before + 1
        for index in range(3):
            assert first_names(three, index) == (plain, [])
