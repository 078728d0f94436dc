"""Department outages kept to the department: a deadline on every read (`deadline.py`), a
circuit breaker per department (`breaker.py`), the connector that applies both (`guard.py`),
and what /readyz reports (`readiness.py`)."""
