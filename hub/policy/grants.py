"""Grants: a department reads an entity's sensitive fields (or one field) plain, for one
purpose, within a time window; and the invariants every grant keeps, whoever made it.

The invariants hold for every policy version, admins' changes and imports included:
- the receiving department and the purpose are known names;
- sensitive (L3) or core (L4) data goes to no department marked public, and only for a purpose
  that needs person-level data;
- a grant lasts at most the configured number of days;
- its reason is bounded.
They are checked when a policy is validated and again when a decision is made, so a grant
stored before a rule tightened fails closed rather than releasing data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.catalog import EntityInfo
from hub.catalog.manifest import Tier
from hub.policy.terms import Terms, TermsError

SENSITIVE = (Tier.L3, Tier.L4)


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    department: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    entity: str = Field(max_length=200)
    # None grants every sensitive (L3) field of the entity; core (L4) fields need their own.
    field: str | None = Field(default=None, max_length=100)
    purpose: str = Field(max_length=64)
    valid_from: datetime
    valid_until: datetime
    granted_by: str = Field(max_length=200)
    reason: str = ""
    # Set by the hub, never by the caller: whether an admin or a data steward made the grant.
    # A steward may revoke only stewards' grants. Grants stored before this existed were made
    # by admins (stewards could not grant then without an admin's review).
    granted_as: Literal["admin", "data_steward"] = "admin"

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time with its offset, e.g. 2026-01-01T00:00:00+08:00")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:59:59-23:59 is a valid ISO time past the last representable one.
            raise ValueError("give a time between the years 1 and 9999 in UTC") from None

    @model_validator(mode="after")
    def _window(self) -> Grant:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    def active(self, now: datetime) -> bool:
        return self.valid_from <= now < self.valid_until


def released_tiers(grant: Grant, entity: EntityInfo) -> set[Tier]:
    """The tiers of the fields the grant releases plain."""
    if grant.field is not None:
        item = entity.fields.get(grant.field)
        return set() if item is None else {item.tier}
    return {Tier.L3} if any(f.tier is Tier.L3 for f in entity.fields.values()) else set()


def grant_problem(grant: Grant, entity: EntityInfo, terms: Terms) -> str | None:
    """Why the grant breaks an invariant, or None if it keeps them all."""
    try:
        department = terms.department(grant.department)
        purpose = terms.purpose(grant.purpose)
    except TermsError as exc:
        return str(exc)
    sensitive = sorted(t.value for t in released_tiers(grant, entity) & set(SENSITIVE))
    if sensitive and department.public:
        return f"{'/'.join(sensitive)} data may not be granted to {grant.department}, a public department"
    if sensitive and not purpose.person_level:
        return (
            f"{'/'.join(sensitive)} data may only be granted for a purpose that needs person-level data; "
            f"{grant.purpose} does not"
        )
    if grant.valid_until - grant.valid_from > timedelta(days=terms.max_grant_days):
        return f"a grant lasts at most {terms.max_grant_days} days"
    if len(grant.reason) > terms.max_reason:
        return f"a reason has at most {terms.max_reason} characters"
    return None
