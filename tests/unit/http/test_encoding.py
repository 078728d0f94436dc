"""A large answer is encoded in pieces, with turns for the event loop between them, into exactly
the bytes one `orjson.dumps` of it makes."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hub.encoding
from hub.encoding import EncodedList, encoded, encoded_slices, fragment

scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text()
answers = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=5), inner, max_size=6),
    max_leaves=200,
)


@settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=answers)
def test_any_answer_encodes_to_orjsons_bytes(value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pieces of a few values: every way of cutting an object or a list is taken.
    monkeypatch.setattr(hub.encoding, "PIECE_VALUES", 4)
    assert asyncio.run(encoded(value)) == orjson.dumps(value)


def answer(lists: int, rows: int) -> dict[str, Any]:
    row = {"deliveryId": "CASD000001", "amount": "5900.00", "deliveredAt": "2025-01-04T09:11:15+08:00", "n": 1}
    data = {f"l{n}": {"nodes": [dict(row, n=i) for i in range(rows)]} for n in range(lists)}
    return {"data": data, "extensions": {"access": {"policyVersion": "1", "masked": [], "truncated": []}}}


async def test_a_large_answer_encodes_in_pieces_with_turns_between() -> None:
    value = answer(4, 20_000)
    turns: list[int] = []
    asyncio.get_running_loop().call_soon(turns.append, 1)
    body = await encoded(value)
    assert body == orjson.dumps(value)
    assert turns == [1]


def test_keys_orjson_refuses_are_refused_alike() -> None:
    with pytest.raises(TypeError):
        asyncio.run(encoded({"data": {1: list(range(50_000))}}))


def rows(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [{"deliveryId": f"CASD{n:06d}", "amount": "5900.00", "n": n, "ok": n % 2 == 0} for n in range(first, count)]


def encoded_list(items: list[dict[str, Any]], per_piece: int) -> EncodedList:
    pieces = [orjson.dumps(items[at : at + per_piece]) for at in range(0, len(items), per_piece)]
    return EncodedList(pieces, len(items) * 5)


@pytest.mark.parametrize("size", [None, 64])
def test_an_encoded_list_writes_its_items_wherever_it_sits(size: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub.encoding, "PIECE_VALUES", 100)
    long, short = rows(2_500), rows(3)
    value = {
        "data": {
            "a": {"nodes": encoded_list(long, 1_000)},
            # A list whose first item is light and whose second holds an encoded list.
            "b": [{"nodes": short}, {"nodes": encoded_list(long, 700)}],
            "c": [encoded_list(short, 2), encoded_list([], 1)],
        }
    }
    plain = {"data": {"a": {"nodes": long}, "b": [{"nodes": short}, {"nodes": long}], "c": [short, []]}}
    slices = asyncio.run(encoded_slices(value, size))
    assert b"".join(slices) == orjson.dumps(plain)
    assert orjson.dumps(value, default=fragment) == orjson.dumps(plain)
    if size is not None:
        # Cut into slices as the pieces come: never one body for the whole list.
        assert len(slices) > 3


def test_fragment_refuses_what_orjson_refuses() -> None:
    with pytest.raises(TypeError):
        orjson.dumps({"data": object()}, default=fragment)
