"""Filters mean the same on every backend, NULLs included: SQL's three-valued logic, where a
comparison with NULL is unknown, `Not` of unknown stays unknown, and only true rows return."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from connectors.base import And, Compare, In, IsNull, Like, Match, Not, Op, Or, QueryError
from tests.contract.conftest import Backend, Loaded
