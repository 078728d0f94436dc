"""Accountability reports: per budget line, what the money paid for and whom it answered
(`ledger.py`), and the gaps an auditor looks for (`gaps.py`), computed from aggregates pushed
into each department's SQL and combined in the hub over small per-key results."""
