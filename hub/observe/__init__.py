"""What an operator sees of the hub: Prometheus metrics (/metrics), OpenTelemetry traces, the
access log and request ids. The only importer of prometheus_client and opentelemetry.

`settings.py` (what OTEL_* and HUB_ACCESS_LOG say), `metrics.py` (the series), `tracing.py`
(the tracer provider, the release step's span), `departments.py` (what the guard reports of each
department read), `requests.py` (one request: its id, counts, access log line and span; and
`Observability`, which holds them all for the app).
"""
