"""The trail's settings: the gathering window of its group commit is read in milliseconds and
bounded, so an operator cannot make every request wait long for its event; where flushes are
written is one of two known places."""

from __future__ import annotations

import pytest

from hub.audit.settings import AuditSettingsError, audit_settings


def test_the_gathering_window_is_left_to_the_writer_unless_set_or_turned_off() -> None:
    assert audit_settings({}).gather_ms is None
    assert audit_settings({"HUB_AUDIT_GATHER_MS": " "}).gather_ms is None
    assert audit_settings({"HUB_AUDIT_GATHER_MS": "1.5"}).gather_ms == 1.5
    assert audit_settings({"HUB_AUDIT_GATHER_MS": "0"}).gather_ms == 0.0


@pytest.mark.parametrize("value", ["-1", "101", "soon", "nan"])
def test_a_gathering_window_out_of_bounds_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(AuditSettingsError, match="HUB_AUDIT_GATHER_MS"):
        audit_settings({"HUB_AUDIT_GATHER_MS": value})


def test_the_writer_is_left_to_the_command_unless_set_to_process_or_thread() -> None:
    assert audit_settings({}).writer is None
    assert audit_settings({"HUB_AUDIT_WRITER": "process"}).writer == "process"
    assert audit_settings({"HUB_AUDIT_WRITER": " Thread "}).writer == "thread"


@pytest.mark.parametrize("value", ["fork", "processes", "1"])
def test_an_unknown_writer_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(AuditSettingsError, match="HUB_AUDIT_WRITER"):
        audit_settings({"HUB_AUDIT_WRITER": value})
