"""Tracing settings from the standard OTEL_* variables, read by load_settings: off unless an
exporter is named, the traces-specific variables before the general ones, and refusals that name
the variable (never a header's value)."""

from __future__ import annotations

import pytest

from hub.config import SettingsError, load_settings
from hub.observe.requests import Observability
from hub.observe.settings import TracingSettings


def tracing(**environ: str) -> TracingSettings:
    return load_settings(environ).observe.tracing


def test_tracing_is_off_without_an_exporter_and_builds_no_tracer() -> None:
    settings = load_settings({})
    assert settings.observe.tracing.exporter == "none"
    assert settings.observe.access_log
    assert Observability(settings.observe).tracer is None


def test_otlp_takes_the_endpoint_headers_and_service_from_the_environment() -> None:
    found = tracing(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="https://collector.example:4318/",
        OTEL_EXPORTER_OTLP_HEADERS="api-key=s3cr%3Dt,tenant=hub",
        OTEL_EXPORTER_OTLP_TIMEOUT="2500",
        OTEL_SERVICE_NAME="hub-staging",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",
    )
    assert found.enabled
    assert found.endpoint == "https://collector.example:4318/v1/traces"
    assert found.headers == {"api-key": "s3cr=t", "tenant": "hub"}
    assert found.timeout_s == 2.5
    assert found.service_name == "hub-staging"
    assert found.resource_attributes == {"deployment.environment": "staging"}
    assert (found.sampler, found.sampler_ratio) == ("parentbased_traceidratio", 0.25)
    # A collector's API key never shows in the settings' repr.
    assert "s3cr" not in repr(found)


def test_the_traces_endpoint_is_used_as_it_is_and_wins_over_the_general_one() -> None:
    found = tracing(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://general:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://traces:4318/custom/path",
    )
    assert found.endpoint == "http://traces:4318/custom/path"


def test_the_sdk_disabled_switch_turns_tracing_off() -> None:
    assert not tracing(OTEL_TRACES_EXPORTER="otlp", OTEL_SDK_DISABLED="true").enabled


def test_an_otlp_hub_builds_a_tracer_without_sending_anything() -> None:
    settings = load_settings({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    observed = Observability(settings.observe)
    try:
        assert observed.tracer is not None
    finally:
        observed.close()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "secret-without-a-name"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"HUB_ACCESS_LOG": "sometimes"}, "HUB_ACCESS_LOG"),
        ({"HUB_ACCESS_LOG_DELAY_MS": "-1"}, "HUB_ACCESS_LOG_DELAY_MS"),
    ],
)
def test_a_malformed_setting_stops_the_start_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ)
    assert named in str(refused.value)
    assert "secret-without-a-name" not in str(refused.value)
