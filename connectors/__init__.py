"""Adapters to department databases: the contract in `base`, SQL databases through `sql`, and
an in-memory stand-in in `memory`. Connectors know nothing of GraphQL, policy or keys."""
