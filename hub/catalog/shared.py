"""Entities shared across hubs: the manifests' `shared` declarations, checked and merged.

A shared entity is what a Federation gateway joins hubs on (docs/federation.md): one type name
and key in every hub that declares it, and in each hub the member entities whose rows hold
that key. Several departments of one hub may declare the same type; their declarations must
agree on the key and its index domain, and their members are merged.

The checks here stop the hub at start-up with a message naming the file: a member that is not
an entity of the department, a key field that is not there, an index domain the field is not
indexed in, a plain key on an encrypted field, names that clash with generated ones.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.catalog.manifest import FieldType, SharedDecl, Tier, lower_first
from hub.catalog.model import Catalog, SharedInfo, SharedMember

# Names the Federation specification and the hub's fixed types take.
RESERVED = frozenset({"Query", "Mutation", "Subscription", "_Service", "_Entity", "_Any", "Resolvable"})


class SharedError(Exception):
    """A shared-entity declaration is wrong; the message names where."""


def add_shared(catalog: Catalog, declared: Iterable[tuple[str, str, SharedDecl]], taken: set[str]) -> None:
    """Adds the shared entities `declared` ((source, department, declaration)) to `catalog`;
    `taken` holds the GraphQL names the generated types and root fields use."""
    for source, department, decl in declared:
        where = f"{source}: shared {decl.type}"
        if decl.type in RESERVED or decl.type in taken or decl.type.startswith("__"):
            raise SharedError(f"{where}: the type name is already used by the hub's schema")
        members: dict[str, SharedMember] = {}
        link = lower_first(decl.type)
        for item in decl.members:
            members[item.name] = _member(
                where, catalog, department, decl, item.entity, item.field, item.name, item.many
            )
            entity = catalog.entity(members[item.name].entity)
            if link in entity.fields or link in entity.relations:
                raise SharedError(f"{where}: entity {item.entity} already has a field {link}, the shared link's name")
        if decl.key in members:
            raise SharedError(f"{where}: member {decl.key} has the key's name")
        found = catalog.shared.get(decl.type)
        if found is None:
            catalog.shared[decl.type] = SharedInfo(
                decl.type, decl.key, decl.index_domain, decl.index_fingerprint, members, link
            )
            continue
        if (found.key, found.index_domain, found.index_fingerprint) != (
            decl.key,
            decl.index_domain,
            decl.index_fingerprint,
        ):
            raise SharedError(f"{where}: another department declares it with another key, domain or fingerprint")
        for name, member in members.items():
            if name in found.members:
                raise SharedError(f"{where}: member {name} is declared twice")
            found.members[name] = member
    for shared in catalog.shared.values():
        for member in shared.members.values():
            entity = catalog.entity(member.entity)
            found_link = entity.links.get(shared.link)
            if found_link is not None and found_link != (shared.type_name, member.field):
                raise SharedError(f"shared {shared.type_name}: {entity.id} holds its key in two fields")
            entity.links[shared.link] = (shared.type_name, member.field)


def _member(
    where: str, catalog: Catalog, department: str, decl: SharedDecl, entity: str, field: str, name: str, many: bool
) -> SharedMember:
    info = catalog.entities.get(f"{department}.{entity}")
    if info is None:
        raise SharedError(f"{where}: member {name}: {entity} is not an entity of {department}")
    item = info.fields.get(field)
    if item is None:
        raise SharedError(f"{where}: member {name}: {field} is not a field of {entity}")
    if decl.index_domain is not None:
        if not item.encrypted or item.blind_index != decl.index_domain or item.index_column is None:
            raise SharedError(
                f"{where}: member {name}: {entity}.{field} must be encrypted with a blind index of the "
                f"domain {decl.index_domain}"
            )
    else:
        if item.encrypted:
            raise SharedError(
                f"{where}: member {name}: {entity}.{field} is encrypted; share it by its blind index "
                "(index_domain and index_fingerprint)"
            )
        if item.type not in (FieldType.ID, FieldType.STRING):
            raise SharedError(f"{where}: member {name}: a shared key is an ID or String field")
        if item.person or item.identifier is not None or item.tier in (Tier.L3, Tier.L4):
            # A plain key travels to the gateway and is looked up by `_entities` outside the
            # lookup quota: a guessable identifier of a person must go by its blind index.
            raise SharedError(
                f"{where}: member {name}: {entity}.{field} identifies a person or is sensitive ({item.tier.value}); "
                "share it by its blind index (index_domain and index_fingerprint)"
            )
    if not many and field != info.key:
        # A to-one member must find at most one row per key: its entity's own key.
        raise SharedError(f"{where}: member {name}: a member that is not `many` must use its entity's key")
    return SharedMember(info.id, field, name, many)
