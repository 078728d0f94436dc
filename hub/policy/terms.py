"""The policy's terms: the departments and purposes a policy may name, and the bounds every
grant keeps.

Known departments are the catalog's (they keep data) plus the consumer-only ones declared in
`policies/departments.yaml` (they only read) and, for a deployment, in its own departments file
(HUB_DEPARTMENTS_FILE): a hub composed with others declares there the departments of other hubs
it grants to, whose apps it registers in its own database. Purposes come from `policies/purposes.yaml`,
each saying whether it needs data about one person. Every name a caller or a policy gives is
checked against these lists, and an unknown one is refused with the known ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hub.catalog import Catalog

POLICIES = Path(__file__).resolve().parents[2] / "policies"
# A reason is for a reviewer to read, not a place to store data.
MAX_REASON = 2_000


class TermsError(Exception):
    """A name the terms do not know, or a malformed terms file; the message says which."""


@dataclass(frozen=True)
class Purpose:
    code: str
    title: str
    # Whether the purpose needs data about one person: only such purposes may carry grants of
    # sensitive (L3) or core (L4) data.
    person_level: bool


@dataclass(frozen=True)
class Department:
    code: str
    title: str
    # Callers outside government: never granted sensitive or core data.
    public: bool = False


@dataclass(frozen=True)
class Terms:
    purposes: Mapping[str, Purpose]
    departments: Mapping[str, Department]
    max_grant_days: int = 90
    max_reason: int = MAX_REASON
    # The fewest values a masked identifier may leave (hub.policy.mask_strength).
    min_mask_candidates: int = 10_000

    def department(self, code: str) -> Department:
        found = self.departments.get(code)
        if found is None:
            raise TermsError(f"{code[:60]!r} is not a known department; known: {', '.join(sorted(self.departments))}")
        return found

    def purpose(self, code: str) -> Purpose:
        found = self.purposes.get(code)
        if found is None:
            raise TermsError(f"{code[:60]!r} is not a purpose code; known: {', '.join(sorted(self.purposes))}")
        return found


def load_purposes(folder: Path = POLICIES) -> dict[str, Purpose]:
    raw = _read(folder / "purposes.yaml")
    purposes: dict[str, Purpose] = {}
    for code, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("person_level"), bool):
            raise TermsError(f"purposes.yaml: {code} needs {{title: ..., person_level: true|false}}")
        purposes[str(code)] = Purpose(str(code), str(entry.get("title", "")), entry["person_level"])
    return purposes


def load_departments(catalog: Catalog, folder: Path = POLICIES, extra: Path | None = None) -> dict[str, Department]:
    """The catalog's departments (never public), the consumer-only ones of the packaged file and
    those of `extra`, the deployment's own file."""
    known = {code: Department(code, info.title) for code, info in catalog.departments.items()}
    files = [(folder / "departments.yaml", "departments.yaml")]
    if extra is not None:
        files.append((extra, f"{extra.name} (HUB_DEPARTMENTS_FILE)"))
    for path, name in files:
        for code, entry in _read(path, name).items():
            if not isinstance(entry, dict) or not isinstance(entry.get("public", False), bool):
                raise TermsError(f"{name}: {code} needs {{title: ..., public: true|false}}")
            if code in catalog.departments:
                raise TermsError(f"{name}: {code} is a catalog department; list only consumer-only ones")
            if code in known:
                raise TermsError(f"{name}: {code} is already declared in policies/departments.yaml")
            known[str(code)] = Department(str(code), str(entry.get("title", "")), entry.get("public", False))
    return known


def load_terms(
    catalog: Catalog,
    max_grant_days: int = 90,
    min_mask_candidates: int = 10_000,
    folder: Path = POLICIES,
    departments_file: Path | None = None,
) -> Terms:
    return Terms(
        load_purposes(folder),
        load_departments(catalog, folder, departments_file),
        max_grant_days,
        min_mask_candidates=min_mask_candidates,
    )


def _read(path: Path, name: str | None = None) -> dict[str, Any]:
    # Named by the file's name only: the path may say where the deployment keeps its secrets.
    name = name or path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise TermsError(f"{name} does not exist") from None
    except (OSError, UnicodeDecodeError):
        raise TermsError(f"{name} cannot be read") from None
    except yaml.YAMLError:
        raise TermsError(f"{name} is not valid YAML") from None
    if not isinstance(raw, dict):
        raise TermsError(f"{name} is a mapping of codes to entries")
    return raw
