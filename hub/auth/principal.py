"""The principal: who is asking, as established by authentication."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """A registered department app acting for its department.

    `attributes` carry what row rules may use (for example a district code)."""

    subject: str
    department: str
    roles: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
