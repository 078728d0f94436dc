"""What an operator sets about observing the hub: the access log, and tracing through the
standard OpenTelemetry variables (OTEL_*).

`observe_settings(environ)` is called by `load_settings` with its snapshot of the environment:
nothing here reads `os.environ`. Tracing is off unless OTEL_TRACES_EXPORTER names an exporter
(the specification's default is `otlp`; a hub that sent spans to a collector nobody set up
would log export failures on every batch, so here the default is `none`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

# The samplers the specification names, as OTEL_TRACES_SAMPLER spells them.
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
EXPORTERS = ("none", "otlp", "console")
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"


class ObserveSettingsError(ValueError):
    """A malformed observability setting; the message names the variable (load_settings turns it
    into a SettingsError)."""


@dataclass(frozen=True)
class TracingSettings:
    # none (off), otlp (OTLP over HTTP with protobuf) or console (spans printed to stdout).
    exporter: str = "none"
    service_name: str = "department-hub"
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    # The full URL spans are posted to.
    endpoint: str = DEFAULT_OTLP_ENDPOINT + "/v1/traces"
    # Often an API key of the collector: never printed.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 10.0
    compression: str = "none"
    certificate_file: str | None = None
    client_key_file: str | None = None
    client_certificate_file: str | None = None
    sampler: str = "parentbased_always_on"
    sampler_ratio: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.exporter != "none"


@dataclass(frozen=True)
class ObserveSettings:
    # One JSON line per /graphql request on the `hub.access_log` logger (stdout under `hub serve`),
    # written in batches at most `access_log_delay_s` after the request.
    access_log: bool = True
    tracing: TracingSettings = field(default_factory=TracingSettings)
    access_log_delay_s: float = 0.05


def observe_settings(environ: Mapping[str, str], access_log: bool) -> ObserveSettings:
    """The observability settings in `environ` (HUB_ACCESS_LOG is read by load_settings with the
    other flags and passed in)."""
    delay_ms = _number("HUB_ACCESS_LOG_DELAY_MS", environ.get("HUB_ACCESS_LOG_DELAY_MS", "50"))
    if not 0 <= delay_ms <= 10_000:
        raise ObserveSettingsError("HUB_ACCESS_LOG_DELAY_MS must be milliseconds from 0 to 10000")
    return ObserveSettings(access_log, tracing_settings(environ), delay_ms / 1000)


def tracing_settings(environ: Mapping[str, str]) -> TracingSettings:
    def get(name: str) -> str | None:
        value = environ.get(name)
        return value.strip() if value is not None and value.strip() else None

    def signal(name: str) -> str | None:
        # The traces-specific variable wins over the general one, as the specification says.
        return get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or get(f"OTEL_EXPORTER_OTLP_{name}")

    if (get("OTEL_SDK_DISABLED") or "").lower() == "true":
        return TracingSettings()
    exporter = (get("OTEL_TRACES_EXPORTER") or "none").lower()
    if exporter not in EXPORTERS:
        raise ObserveSettingsError(f"OTEL_TRACES_EXPORTER must be one of {', '.join(EXPORTERS)}")
    protocol = signal("PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        # The gRPC exporter would bring grpcio, a large native package, for one transport.
        raise ObserveSettingsError("OTEL_EXPORTER_OTLP_PROTOCOL: this hub sends OTLP as http/protobuf only")
    endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint is None:
        base = get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_OTLP_ENDPOINT
        endpoint = base.rstrip("/") + "/v1/traces"
    if not endpoint.startswith(("http://", "https://")):
        raise ObserveSettingsError("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL")
    compression = (signal("COMPRESSION") or "none").lower()
    if compression not in ("none", "gzip", "deflate"):
        raise ObserveSettingsError("OTEL_EXPORTER_OTLP_COMPRESSION must be none, gzip or deflate")
    timeout_ms = _number("OTEL_EXPORTER_OTLP_TIMEOUT", signal("TIMEOUT") or "10000")
    if not 0 < timeout_ms <= 600_000:
        raise ObserveSettingsError("OTEL_EXPORTER_OTLP_TIMEOUT must be milliseconds above 0, at most 600000")
    sampler = (get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").lower()
    if sampler not in SAMPLERS:
        raise ObserveSettingsError(f"OTEL_TRACES_SAMPLER must be one of {', '.join(SAMPLERS)}")
    ratio = _number("OTEL_TRACES_SAMPLER_ARG", get("OTEL_TRACES_SAMPLER_ARG") or "1.0")
    if not 0 <= ratio <= 1:
        raise ObserveSettingsError("OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1")
    return TracingSettings(
        exporter=exporter,
        service_name=get("OTEL_SERVICE_NAME") or "department-hub",
        resource_attributes=_pairs("OTEL_RESOURCE_ATTRIBUTES", get("OTEL_RESOURCE_ATTRIBUTES")),
        endpoint=endpoint,
        headers=_pairs("OTEL_EXPORTER_OTLP_HEADERS", signal("HEADERS")),
        timeout_s=timeout_ms / 1000,
        compression=compression,
        certificate_file=signal("CERTIFICATE"),
        client_key_file=signal("CLIENT_KEY"),
        client_certificate_file=signal("CLIENT_CERTIFICATE"),
        sampler=sampler,
        sampler_ratio=ratio,
    )


def _pairs(name: str, value: str | None) -> dict[str, str]:
    """`key=value,key=value`, values percent-encoded (the W3C Baggage form the specification
    uses). Errors name the variable, never a value (a header may hold a secret)."""
    pairs: dict[str, str] = {}
    for item in (value or "").split(","):
        if not item.strip():
            continue
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise ObserveSettingsError(f"{name} must read key=value,key=value")
        pairs[key.strip()] = unquote(text.strip())
    return pairs


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ObserveSettingsError(f"{name} must be a number") from None
