"""`hub keys index-recipient | fingerprint-index | export-index | import-index`: a blind-index
key moved between two hubs, sealed for the receiving hub's master key only; a hub that already
indexes with another key keeps it unless told to replace it; no output carries the key."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from sqlalchemy.engine import URL

from hub.crypto.index_transfer import TransferError, open_index_key, seal_index_key
from hub.crypto.keyring import load_keyring, provision
from hub.crypto.master import MasterKey
from hub.db.engine import hub_engine, sessions
from tests.unit.cli.test_keys import env_of, failed, keys_command, new_hub_database


def _provisioned(tmp_path: Path, name: str, master: bytes) -> URL:
    url = new_hub_database(tmp_path, name)

    async def run() -> None:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                await provision(session, MasterKey(master), ["population"], ["resident_id"])
        finally:
            await engine.dispose()

    asyncio.run(run())
    return url


def _index_key(url: URL, master: bytes) -> bytes:
    async def run() -> bytes:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                return (await load_keyring(session, MasterKey(master))).index_key("resident_id")
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_an_index_key_exported_for_another_hub_imports_there_and_both_fingerprints_match(tmp_path: Path) -> None:
    master_a, master_b = os.urandom(32), os.urandom(32)
    hub_a, hub_b = _provisioned(tmp_path, "a", master_a), _provisioned(tmp_path, "b", master_b)
    env_a, env_b = env_of(hub_a, master_a), env_of(hub_b, master_b)
    recipient = keys_command(env_b, "index-recipient").output.strip()
    sealed = tmp_path / "resident_id.sealed"
    exported = keys_command(env_a, "export-index", "resident_id", "--for", recipient, "--output", str(sealed))
    assert exported.exit_code == 0, exported.output
    assert "can tell whether a value is in this hub's data" in exported.stderr
    key_a = _index_key(hub_a, master_a)
    for text in (exported.output, sealed.read_text()):
        assert key_a.hex() not in text and base64.b64encode(key_a).decode() not in text
    # Hub B indexes its data with a key of its own: kept unless replaced.
    refused = failed(keys_command(env_b, "import-index", str(sealed)))
    assert "--replace" in refused
    assert _index_key(hub_b, master_b) != key_a
    replaced = keys_command(env_b, "import-index", str(sealed), "--replace")
    assert replaced.exit_code == 0 and "recompute" in replaced.output
    assert _index_key(hub_b, master_b) == key_a
    fingerprints = {keys_command(env, "fingerprint-index", "resident_id").output.strip() for env in (env_a, env_b)}
    assert len(fingerprints) == 1
    again = keys_command(env_b, "import-index", str(sealed))
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_a_sealed_index_key_opens_only_with_the_recipients_master_key(tmp_path: Path) -> None:
    recipient, other = MasterKey(os.urandom(32)), MasterKey(os.urandom(32))
    from hub.crypto.index_transfer import recipient_key

    sealed = seal_index_key("resident_id", os.urandom(32), recipient_key(recipient))
    assert open_index_key(recipient, sealed)[0] == "resident_id"
    for master, text in ((other, sealed), (recipient, sealed[:-8] + "AAAAAAA=")):
        try:
            open_index_key(master, text)
        except TransferError:
            continue
        raise AssertionError("a sealed key opened where it must not")


def test_exporting_a_domain_the_hub_has_no_key_for_fails_in_one_line(tmp_path: Path) -> None:
    master = os.urandom(32)
    env = env_of(_provisioned(tmp_path, "a", master), master)
    recipient = keys_command(env, "index-recipient").output.strip()
    assert "mobile" in failed(keys_command(env, "export-index", "mobile", "--for", recipient))
