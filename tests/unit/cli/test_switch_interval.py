"""HUB_SWITCH_INTERVAL_MS: `hub serve` and `hub demo` set the interpreter's switch interval
from it (hub/interpreter.py), so a driver thread busy with a large read lets the event loop in
every half millisecond, not every 5 ms; a value that is not a sensible interval stops the hub
at start-up with a line naming the setting."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from hub.cli import serve as serve_module
from hub.config import SettingsError, load_settings
from hub.interpreter import apply_switch_interval
from tests.unit.cli.test_startup_failures import hub


@pytest.fixture(autouse=True)
def python_s_interval() -> Iterator[None]:
    """The test process's own interval, back as it was after each test."""
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_the_default_is_half_a_millisecond() -> None:
    assert load_settings({}).switch_interval_ms == 0.5
    assert load_settings({"HUB_SWITCH_INTERVAL_MS": "2"}).switch_interval_ms == 2.0


@pytest.mark.parametrize("value", ["0", "-1", "0.001", "101", "1e9", "nan", "inf", "fast", ""])
def test_an_interval_out_of_bounds_or_not_a_number_names_the_setting(value: str) -> None:
    with pytest.raises(SettingsError, match="HUB_SWITCH_INTERVAL_MS must be a number"):
        load_settings({"HUB_SWITCH_INTERVAL_MS": value})


def test_applying_sets_the_interpreter_s_interval_and_returns_the_previous() -> None:
    sys.setswitchinterval(0.005)
    assert apply_switch_interval(0.5) == pytest.approx(5.0)
    assert sys.getswitchinterval() == pytest.approx(0.0005)


def test_hub_serve_serves_with_the_interval_of_its_settings(
    tmp_path: Path, hub_db: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "manifests"
    seen: list[float] = []

    async def serving(*args: Any) -> None:
        # In place of the server: what the interpreter's interval is while it would run.
        seen.append(sys.getswitchinterval())

    monkeypatch.setattr(serve_module, "_serving", serving)
    sys.setswitchinterval(0.005)
    settings = load_settings(
        {
            "HUB_DATABASE_URL": hub_db.render_as_string(),
            "HUB_MANIFESTS": str(fixtures),
            "HUB_SWITCH_INTERVAL_MS": "0.25",
        }
    )
    serve_module._serve(settings, "127.0.0.1", 0)
    assert seen == [pytest.approx(0.00025)]


def test_reading_the_settings_leaves_the_interpreter_s_interval_alone() -> None:
    before = sys.getswitchinterval()
    load_settings({"HUB_SWITCH_INTERVAL_MS": "0.1"})
    assert sys.getswitchinterval() == before


def test_hub_serve_with_a_bad_interval_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    code, output = hub(tmp_path, "serve", HUB_SWITCH_INTERVAL_MS="0")
    assert code == 1
    assert output == "error: HUB_SWITCH_INTERVAL_MS must be a number of milliseconds from 0.01 to 100\n"
