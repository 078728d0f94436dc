"""What several instances of one hub share through its PostgreSQL hub database: the change
serial and its notifications (`feed.py`), the rule for an instance that cannot confirm it holds
every change (`unconfirmed.py`), and the catalog's hash every instance must match
(`catalog_hash.py`). docs/scale.md describes the deployment."""
