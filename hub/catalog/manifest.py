"""The manifest file format: what one department declares it shares.

One YAML file per department. Pydantic checks each value; `hub.catalog.loader` turns its
errors into messages naming the file, the entity and the field, and checks what crosses files
(relation targets, name clashes).
"""

from __future__ import annotations

import enum
import keyword
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[A-Za-z][A-Za-z0-9]*$"
SNAKE = r"^[a-z][a-z0-9_]*$"
COLUMN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Tier(enum.Enum):
    """Data tiers after the sharing classes and the Data Security Law's grades."""

    L1 = "L1"  # public: unconditional sharing
    L2 = "L2"  # internal: shared among departments
    L3 = "L3"  # sensitive personal data: conditional sharing
    L4 = "L4"  # core: not shared by default


class FieldType(enum.Enum):
    ID = "ID"
    STRING = "String"
    INT = "Int"
    FLOAT = "Float"
    DECIMAL = "Decimal"
    BOOLEAN = "Boolean"
    DATE = "Date"
    DATETIME = "DateTime"


class Storage(enum.Enum):
    """How an encrypted field's values and blind index are stored (docs/stored-format.md)."""

    BINARY = "binary"
    TEXT = "text"


class LineageRole(enum.Enum):
    CITIZEN_INPUT = "citizen_input"
    SERVICE_DELIVERY = "service_delivery"
    EXPENDITURE = "expenditure"
    BUDGET_LINE = "budget_line"
    FEEDBACK = "feedback"
    # An entitlement granted to a person (an assistance case, a student aid) under which
    # deliveries are paid: the programme basis of a delivery.
    ENTITLEMENT = "entitlement"
    # A person in the registry: where traces towards the citizen end.
    PERSON = "person"


class RefValues(enum.Enum):
    """What a lineage edge's field holds: the target's key (or `to_field`), or global
    references `department:Entity:key` that name their entity themselves."""

    KEY = "key"
    GLOBAL_REF = "global_ref"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartialMask(Strict):
    kind: Literal["partial"]
    keep_first: int = Field(default=0, ge=0)
    keep_last: int = Field(default=0, ge=0)


class HashMask(Strict):
    kind: Literal["hash"]


class YearOnlyMask(Strict):
    kind: Literal["year_only"]


class NullifyMask(Strict):
    kind: Literal["nullify"]


class RoundMask(Strict):
    kind: Literal["round"]
    # Round to this power of ten: 2 keeps hundreds (12345.67 -> 12300).
    digits: int = Field(default=2, ge=0, le=12)


Mask = Annotated[PartialMask | HashMask | YearOnlyMask | NullifyMask | RoundMask, Field(discriminator="kind")]


def _not_keyword(name: str) -> str:
    # Names become Python attributes of generated types and `and`/`or`/`not` are filter words.
    if keyword.iskeyword(name) or name in ("and", "or", "not"):
        raise ValueError(f"{name!r} is a reserved word; choose another name")
    return name


FieldName = Annotated[str, Field(pattern=NAME), AfterValidator(_not_keyword)]


class FieldDecl(Strict):
    name: FieldName
    column: str | None = Field(default=None, pattern=COLUMN)
    type: FieldType
    description: str = ""
    tier: Tier = Tier.L2
    mask: Mask | None = None
    encrypted: bool = False
    # The index domain (e.g. resident_id, mobile) of a blind index kept beside this column.
    blind_index: str | None = Field(default=None, pattern=SNAKE)
    # Where an encrypted field's blind index is stored (default `<column>_bidx`).
    index_column: str | None = Field(default=None, pattern=COLUMN)
    # How an encrypted field and its index are stored: raw bytes (BYTEA, BLOB, VARBINARY) or
    # text (`hub1:` base64, hex index) where the column cannot hold bytes.
    stored_as: Storage = Storage.BINARY
    # Digits after the point, for Decimal fields.
    scale: int = Field(default=2, ge=0, le=12)
    # This field identifies a person (by resident ID number); releases of it are recorded as
    # persons touched.
    person: bool = False
    # The kind of personal identifier this field holds, for the mask-strength check (what its
    # positions mean). Defaults to the blind-index domain when that is resident_id or mobile,
    # else resident_id for a `person` field.
    identifier: Literal["resident_id", "mobile"] | None = None
    # What this field tells about the person on the same record, for the same check: it may
    # narrow a masked identifier (a resident ID holds the birth date, sex and area code).
    person_attribute: Literal["birth_date", "sex", "district"] | None = None

    def identifier_kind(self) -> str | None:
        if self.identifier is not None:
            return self.identifier
        if self.blind_index in ("resident_id", "mobile"):
            return self.blind_index
        return "resident_id" if self.person else None

    @model_validator(mode="after")
    def _encryption_fits(self) -> FieldDecl:
        if self.encrypted and self.type not in (FieldType.STRING, FieldType.ID):
            raise ValueError("only String and ID fields can be encrypted")
        if self.index_column is not None and not (self.encrypted and self.blind_index):
            raise ValueError("index_column is only for an encrypted field with a blind_index")
        return self

    @model_validator(mode="after")
    def _mask_fits_type(self) -> FieldDecl:
        if self.mask is None:
            return self
        kind = self.mask.kind
        if kind == "year_only" and self.type not in (FieldType.DATE, FieldType.DATETIME):
            raise ValueError("a year_only mask needs a Date or DateTime field")
        if kind == "round" and self.type not in (FieldType.INT, FieldType.FLOAT, FieldType.DECIMAL):
            raise ValueError("a round mask needs an Int, Float or Decimal field")
        if kind == "partial" and self.type not in (FieldType.STRING, FieldType.ID):
            raise ValueError("a partial mask needs a String or ID field")
        return self


class RelationDecl(Strict):
    name: FieldName
    # `department.Entity`, or `Entity` within the same department.
    target: str = Field(pattern=r"^([a-z][a-z0-9_]*\.)?[A-Za-z][A-Za-z0-9]*$")
    # The field of this entity whose value is looked up in the target's `target_field`.
    field: str = Field(pattern=NAME)
    target_field: str | None = Field(default=None, pattern=NAME)
    many: bool = False
    description: str = ""


class LineageDecl(Strict):
    """One typed lineage edge from this entity's records: `field` refers to `to`'s records.

    The kinds and the roles they join are in `hub.catalog.lineage`; the loader checks them."""

    kind: str = Field(pattern=SNAKE)
    field: str = Field(pattern=NAME)
    # `department.Entity`, or `Entity` within the same department; omitted only when the
    # field holds global references (then each value names its entity).
    to: str | None = Field(default=None, pattern=r"^([a-z][a-z0-9_]*\.)?[A-Za-z][A-Za-z0-9]*$")
    to_field: str | None = Field(default=None, pattern=NAME)
    values: RefValues = RefValues.KEY
    description: str = ""

    @model_validator(mode="after")
    def _target_given(self) -> LineageDecl:
        if self.values is RefValues.KEY and self.to is None:
            raise ValueError("`to` names the entity the field refers to")
        if self.values is RefValues.GLOBAL_REF and self.to_field is not None:
            raise ValueError("a global reference names its record by key; to_field does not apply")
        return self


class EntityDecl(Strict):
    name: str = Field(pattern=NAME)
    table: str = Field(pattern=COLUMN)
    key: str = Field(pattern=NAME, description="the name of the key field")
    description: str = ""
    plural: str | None = Field(default=None, pattern=NAME)
    type_name: str | None = Field(default=None, pattern=NAME)
    list_field: str | None = Field(default=None, pattern=NAME)
    key_field: str | None = Field(default=None, pattern=NAME)
    lineage_role: LineageRole | None = None
    fields: list[FieldDecl] = Field(min_length=1)
    relations: list[RelationDecl] = []
    lineage: list[LineageDecl] = []


class ConnectionDecl(Strict):
    # Secrets never sit in a manifest: a URL is named by environment variable, except SQLite
    # paths, which hold no password.
    url_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    sqlite_path: str | None = None
    timezone: str = "Asia/Shanghai"
    statement_timeout_ms: int = Field(default=5000, ge=1, le=600_000)
    pool_size: int = Field(default=5, ge=1, le=100)

    @model_validator(mode="after")
    def _one_source(self) -> ConnectionDecl:
        if (self.url_env is None) == (self.sqlite_path is None):
            raise ValueError("give exactly one of url_env and sqlite_path")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class SharedMemberDecl(Strict):
    """An entity of this department that holds a shared entity's key, and the field of the
    shared entity (on this hub's part of it) that lists its rows."""

    entity: str = Field(pattern=NAME)
    # The entity's field whose value (or, for an index domain, its blind index) is the key.
    field: str = Field(pattern=NAME)
    # The shared entity's field on this hub that gives these rows (`person`, `healthVisits`).
    name: FieldName
    many: bool = False


class SharedDecl(Strict):
    """An entity shared across hubs under an Apollo Federation 2 `@key` (docs/federation.md):
    every hub that declares the type with the same key can be composed by a gateway."""

    type: str = Field(pattern=NAME, max_length=60)
    key: FieldName
    # The key is the blind index of this domain (a person by resident ID number): hubs that
    # share it share the domain's index key (`hub keys export-index`).
    index_domain: str | None = Field(default=None, pattern=SNAKE)
    # The fingerprint of that index key every hub of the composition holds (`hub keys
    # fingerprint-index`): a hub whose key differs refuses to serve the key and says why.
    index_fingerprint: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    members: list[SharedMemberDecl] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _fingerprint_with_domain(self) -> SharedDecl:
        if (self.index_domain is None) != (self.index_fingerprint is None):
            raise ValueError("index_domain and index_fingerprint go together")
        return self


class DemandAnswerDecl(Strict):
    """Requests of `category` are answered by deliveries of `service_type` from `department`."""

    category: str = Field(min_length=1, max_length=100)
    department: str = Field(pattern=SNAKE)
    service_type: str = Field(min_length=1, max_length=200)


class DemandDecl(Strict):
    """What citizens' requests ask for, in delivered services: declared by the department that
    takes the requests (the hotline), checked against the other manifests at start-up
    (hub/catalog/demand.py)."""

    # The entity (lineage role citizen_input) holding the requests, and its fields the
    # accountability reports read.
    entity: str = Field(pattern=NAME)
    category: str = Field(default="category", pattern=NAME)
    district: str = Field(default="districtCode", pattern=NAME)
    received: str = Field(default="receivedAt", pattern=NAME)
    deadline: str = Field(default="deadline", pattern=NAME)
    closed: str = Field(default="closedAt", pattern=NAME)
    answers: list[DemandAnswerDecl] = Field(min_length=1, max_length=1000)
    # Per delivering department: the field whose presence gives a delivery a programme basis
    # (an assistance case, a granted aid) when it answers no request.
    bases: dict[str, str] = {}


class Manifest(Strict):
    department: str = Field(pattern=SNAKE)
    title: str = ""
    # The department's part of GraphQL type names; by default its name in PascalCase.
    prefix: str | None = Field(default=None, pattern=NAME)
    connection: ConnectionDecl
    entities: list[EntityDecl] = Field(min_length=1)
    # Entities shared with other hubs through a Federation gateway.
    shared: list[SharedDecl] = Field(default=[], max_length=20)
    demand: DemandDecl | None = None


def pascal(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def pluralize(name: str) -> str:
    if re.search(r"[^aeiou]y$", name):
        return name[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", name):
        return name + "es"
    return name + "s"


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
