"""Lookup quotas: how many distinct identifier values each caller may supply per hour on fields
it does not read plain (by-key arguments, `eq`/`in` filter values). Each such value is one
guess at a masked identifier, so the quota bounds what guessing can recover.

`models` (the tables), `store` (counting in the hub database, shared by every instance),
`counter` (the per-request check, with a local cache of values already counted).
"""

from hub.quota.counter import LOOKUP_QUOTA, LookupCounter, Refusal

__all__ = ["LOOKUP_QUOTA", "LookupCounter", "Refusal"]
