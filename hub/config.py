"""Settings: the only reader of the environment.

`load_settings(environ)` is called once by the composition root (the app factory, the command
line, alembic's env.py) and the result is passed down. Connection URLs named in manifests are
looked up in the same snapshot of the environment, so nothing else reads `os.environ`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from limits import parse as parse_rate
from sqlalchemy.engine import URL, make_url

from hub.audit.settings import AuditSettings, AuditSettingsError, audit_settings
from hub.db.url import url_problem
from hub.observe.settings import ObserveSettings, ObserveSettingsError, observe_settings

DEFAULT_MAX_BODY_BYTES = 1_000_000
# 24 x 200 = 4,800 a day: below half of the 10,000 candidates a mask must leave.
DEFAULT_LOOKUP_QUOTAS = {"department_app": 200, "auditor": 200, "district_office": 100, "data_steward": 100}
# Requests per caller: 50 a second for an app, 5 for the public caller; roles not listed get
# the default. A department's apps together get HUB_DEPARTMENT_RATE_LIMIT.
DEFAULT_RATE_LIMITS = {"public": "300/minute"}
# The auditor's widest district listing the value budget lets through (every district's
# residents with their district's residents, twice: bench/heavy_request.py) costs 6,030,102;
# one level deeper costs 102,020,102. The README gives more prices.
DEFAULT_MAX_COST = 10_000_000
# The limits that may differ per role: limit name -> the Settings field of its default (its
# variable is that name in capitals after HUB_: HUB_MAX_COST).
PER_ROLE_LIMITS = {"depth": "max_depth", "aliases": "max_aliases", "directives": "max_directives", "cost": "max_cost"}
# Requests a caller may have in flight at once, per instance (hub/quota/concurrency.py): a
# department's app serves many of its staff at once; any other caller (an auditor, the public)
# gets the default.
DEFAULT_CONCURRENCY_LIMITS = {"department_app": 16}
# HUB_SWITCH_INTERVAL_MS's bounds: below 10 microseconds threads would trade the interpreter
# more often than they run; above 100 ms one thread's work stalls every request for that long.
MIN_SWITCH_INTERVAL_MS = 0.01
MAX_SWITCH_INTERVAL_MS = 100.0


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


# Gateways a hub trusts at once (one per composition, two during a key change).
MAX_GATEWAY_KEYS = 8


def _gateway_keys(text: str) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            raw = base64.b64decode(part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise SettingsError(
                "HUB_GATEWAY_PUBLIC_KEYS holds Ed25519 public keys: 32 bytes each, base64, comma-separated"
            )
        keys.append(raw)
    if len(keys) > MAX_GATEWAY_KEYS:
        raise SettingsError(f"HUB_GATEWAY_PUBLIC_KEYS names at most {MAX_GATEWAY_KEYS} keys")
    return tuple(dict.fromkeys(keys))


@dataclass(frozen=True)
class Settings:
    # The hub's own database (apps, tokens; later policies, keys, lineage, audit).
    database_url: URL
    # The folder of department manifests (*.yaml).
    manifests_dir: Path
    # Environment values manifests may reference by name (connection URLs with passwords).
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_page_size: int = 10_000
    default_page_size: int = 100
    # Rows of a relation's list under one parent: lists cut there are named in the response's
    # extensions.access.truncated. The maximum bounds the setting (and a later `first`).
    relation_page_size: int = 100
    max_relation_page_size: int = 1_000
    # Values (rows times selected fields) one request may read and place in its answer,
    # counted per parent for relation lists; past it the request answers no data.
    max_values: int = 1_000_000
    # The per-key rows the accountability reports of one request may join in the hub (every
    # report field of the request together); past it LIMIT_EXCEEDED (hub/accountability/bound.py).
    max_report_rows: int = 250_000
    # Requests above this depth or with more aliases are refused before execution.
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 20_000
    # Demand control (schema/limits.py): directive uses and the cost (fields, multiplied by
    # the rows each list may hold) of one operation, checked before anything runs.
    max_directives: int = 50
    max_cost: int = DEFAULT_MAX_COST
    # Per-role overrides of the limits above: limit (depth, aliases, directives, cost) ->
    # role -> maximum. Roles not listed get the default; a caller with several roles gets the
    # largest of theirs.
    limits_by_role: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # The longest grant anyone may give (admins included).
    max_grant_days: int = 90
    # A masked person identifier must stay one of at least this many values for every kind
    # of caller, given what else it is released (hub.policy.mask_strength).
    min_mask_candidates: int = 10_000
    # Seals page cursors; instances behind one load balancer need the same key. Without one,
    # each process makes its own and cursors do not outlive it.
    cursor_key: bytes | None = field(default=None, repr=False)
    # The master key that wraps every data key: given in the environment (HUB_MASTER_KEY) or
    # as the path of an owner-only key file (HUB_MASTER_KEY_FILE), never both. The keyring
    # reads and checks the file (hub.crypto.master).
    master_key: bytes | None = field(default=None, repr=False)
    master_key_file: Path | None = None
    # Consumer-only departments of this deployment, beside policies/departments.yaml: those of
    # other hubs in a Federation composition whose apps this hub registers and grants to
    # (docs/federation.md). Same format; a catalog department or a packaged one is refused.
    departments_file: Path | None = None
    # Run only registered (trusted) documents; free-text operations are refused. For a hub
    # whose apps are known and fixed, this closes the door to exploratory or costly queries.
    trusted_documents_only: bool = False
    # How long an instance trusts a token it has checked before reading the hub database
    # again: a revoked token keeps working on an instance for at most this long. 0 reads the
    # database on every request.
    token_cache_seconds: float = 1.0
    # The Ed25519 public keys (raw, 32 bytes) of the Federation gateways this hub trusts
    # (HUB_GATEWAY_PUBLIC_KEYS, base64, comma-separated): a request with an assertion signed by
    # one of them acts as the app it names (docs/federation.md). None trusted: `_entities` and
    # `_service` are refused to everyone.
    gateway_public_keys: tuple[bytes, ...] = field(default=(), repr=False)
    # The most related rows one row rule that follows a relation may match (a key-set
    # semi-join, e.g. a district's residents); past it a request is refused, never cut.
    max_semijoin_keys: int = 10_000
    # Lookup quotas (hub/quota): how many distinct identifier values a caller may supply per
    # hour on fields it does not read plain, by role; roles not listed get the default, and a
    # caller with several roles gets the largest of theirs. Each one guess at a masked ID
    # number, so a day of the most generous quota must stay well below a mask's candidates.
    lookup_quotas: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LOOKUP_QUOTAS))
    lookup_quota_default: int = 50
    # Off only to price the counter (bench W6-quota); a hub serving callers keeps it on.
    lookup_quota_enabled: bool = True
    # Request rate limits (hub/quota/rates.py): per caller by role (the most generous of its
    # roles'), and per department for all its apps together; `limits` rate strings.
    rate_limit_enabled: bool = True
    rate_limits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    rate_limit_default: str = "3000/minute"
    department_rate_limit: str = "20000/minute"
    # Where counts live: memory:// for one instance, redis://host:port/db for several.
    limits_storage: str = field(default="memory://", repr=False)
    # Each department's circuit breaker (hub/health): this many failed reads in a row, within
    # the window, open it; open, it refuses reads at once for the cool-down, then lets one
    # probe through. (Each read's deadline is the manifest's statement_timeout_ms.)
    breaker_failures: int = 5
    breaker_window_seconds: float = 30.0
    breaker_cooldown_seconds: float = 10.0
    # Several instances on one PostgreSQL hub database (hub/instances): how often an instance
    # checks the change serial itself (the fallback beside LISTEN/NOTIFY, and its keep-alive),
    # and how long it may go without confirming it holds every change before it withholds L3
    # and L4 fields and reports itself not ready.
    change_poll_seconds: float = 1.0
    unconfirmed_after_seconds: float = 3.0
    # Production mode is the default: the schema is not served to whoever asks (introspection
    # off, and with it the "Did you mean" suggestions that would spell it out field by field)
    # and /graphql serves no GraphiQL page. `hub demo` turns both on.
    introspection: bool = False
    graphiql: bool = False
    # The request body is refused past this many bytes, as it streams in.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Bounds on a request's variables, checked before GraphQL reads them: values counted over
    # every list and object (four `in` lists at their 5,000 fit), and levels of nesting (ten
    # levels of and/or/not filters fit).
    max_variable_values: int = 20_000
    max_variable_depth: int = 32
    # Requests in flight per caller on this instance, by role (the largest of its roles'); past
    # it a request waits up to concurrency_wait_seconds for one of the caller's own to end,
    # then is refused with 429 (hub/quota/concurrency.py).
    concurrency_limit_enabled: bool = True
    concurrency_limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CONCURRENCY_LIMITS))
    concurrency_limit_default: int = 4
    concurrency_wait_seconds: float = 1.0
    # How long, in milliseconds, a thread may hold the interpreter before another gets it
    # (sys.setswitchinterval, applied by `hub serve` and `hub demo`: hub/interpreter.py).
    # Python's 5 ms lets a driver's thread decoding rows stall the event loop that long.
    switch_interval_ms: float = 0.5
    # The access log (HUB_ACCESS_LOG) and tracing (the standard OTEL_* variables).
    observe: ObserveSettings = field(default_factory=ObserveSettings)
    # The access trail (hub/audit/settings.py: HUB_AUDIT and its companions).
    audit: AuditSettings = field(default_factory=AuditSettings)

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    def lookup_quota(self, roles: Iterable[str]) -> int:
        """The hourly lookup quota of a caller with `roles`: the largest of its roles'."""
        return max(
            (self.lookup_quotas.get(role, self.lookup_quota_default) for role in roles),
            default=self.lookup_quota_default,
        )

    def limit(self, name: str, roles: Iterable[str]) -> int:
        """The `name` limit (depth, aliases, directives, cost) of a caller with `roles`: the
        largest of their roles', the default for roles without an override."""
        default: int = getattr(self, PER_ROLE_LIMITS[name])
        overrides = self.limits_by_role.get(name, {})
        return max((overrides.get(role, default) for role in roles), default=default)

    def largest_limit(self, name: str) -> int:
        """The `name` limit of the most generous role: what no caller may exceed."""
        default: int = getattr(self, PER_ROLE_LIMITS[name])
        return max([default, *self.limits_by_role.get(name, {}).values()])

    def unknown_limit_role(self, known: set[str]) -> str | None:
        """Why a per-role limit cannot apply: it names a role outside `known` (the policy's);
        None when every role it names is known."""
        for limit, roles in sorted(self.limits_by_role.items()):
            for role in sorted(set(roles) - known):
                variable = f"HUB_{PER_ROLE_LIMITS[limit].upper()}"
                listing = ", ".join(sorted(known))
                return f"{variable} names the role {role[:60]!r}, which the policy does not know (known: {listing})"
        return None

    def max_daily_lookups(self) -> int:
        """The most lookups any caller can make in a day: 24 hours of the largest quota."""
        return 24 * max([self.lookup_quota_default, *self.lookup_quotas.values()])


def load_settings(
    environ: Mapping[str, str], *, file_values: Mapping[str, str] | None = None, **overrides: object
) -> Settings:
    """Build settings from an environment mapping; keyword overrides win (the command line).
    HUB_SETTINGS_FILE names a file of `NAME=value` lines read under the environment: a
    variable set in both takes the environment's value. `file_values` (the command line's
    `hub.toml`, hub/config_file.py) sit under both."""
    environ = {**(file_values or {}), **_with_settings_file(environ)}
    values: dict[str, object] = {
        "database_url": environ.get("HUB_DATABASE_URL", "sqlite+aiosqlite:///hub.db"),
        "manifests_dir": environ.get("HUB_MANIFESTS", "manifests"),
        "max_page_size": environ.get("HUB_MAX_PAGE_SIZE", "10000"),
        "default_page_size": environ.get("HUB_DEFAULT_PAGE_SIZE", "100"),
        "relation_page_size": environ.get("HUB_RELATION_PAGE_SIZE", "100"),
        "max_relation_page_size": environ.get("HUB_MAX_RELATION_PAGE_SIZE", "1000"),
        "max_values": environ.get("HUB_MAX_VALUES", "1000000"),
        "max_report_rows": environ.get("HUB_MAX_REPORT_ROWS", "250000"),
        "max_grant_days": environ.get("HUB_MAX_GRANT_DAYS", "90"),
        "min_mask_candidates": environ.get("HUB_MIN_MASK_CANDIDATES", "10000"),
        "master_key_file": environ.get("HUB_MASTER_KEY_FILE"),
        "departments_file": environ.get("HUB_DEPARTMENTS_FILE"),
        "trusted_documents_only": environ.get("HUB_TRUSTED_DOCUMENTS_ONLY", "false"),
        "token_cache_seconds": environ.get("HUB_TOKEN_CACHE_SECONDS", "1"),
        "gateway_public_keys": environ.get("HUB_GATEWAY_PUBLIC_KEYS", ""),
        "max_semijoin_keys": environ.get("HUB_MAX_SEMIJOIN_KEYS", "10000"),
        "lookup_quotas": environ.get("HUB_LOOKUP_QUOTAS"),
        "lookup_quota_default": environ.get("HUB_LOOKUP_QUOTA_DEFAULT", "50"),
        "lookup_quota_enabled": environ.get("HUB_LOOKUP_QUOTA", "on"),
        "rate_limit_enabled": environ.get("HUB_RATE_LIMIT", "on"),
        "rate_limits": environ.get("HUB_RATE_LIMITS"),
        "rate_limit_default": environ.get("HUB_RATE_LIMIT_DEFAULT", "3000/minute"),
        "department_rate_limit": environ.get("HUB_DEPARTMENT_RATE_LIMIT", "20000/minute"),
        "limits_storage": environ.get("HUB_LIMITS_STORAGE", "memory://"),
        "breaker_failures": environ.get("HUB_BREAKER_FAILURES", "5"),
        "breaker_window_seconds": environ.get("HUB_BREAKER_WINDOW_SECONDS", "30"),
        "breaker_cooldown_seconds": environ.get("HUB_BREAKER_COOLDOWN_SECONDS", "10"),
        "change_poll_seconds": environ.get("HUB_CHANGE_POLL_SECONDS", "1"),
        "unconfirmed_after_seconds": environ.get("HUB_UNCONFIRMED_AFTER_SECONDS", "3"),
        "introspection": environ.get("HUB_INTROSPECTION", "off"),
        "graphiql": environ.get("HUB_GRAPHIQL", "off"),
        "max_body_bytes": environ.get("HUB_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)),
        "max_variable_values": environ.get("HUB_MAX_VARIABLE_VALUES", "20000"),
        "max_variable_depth": environ.get("HUB_MAX_VARIABLE_DEPTH", "32"),
        "max_tokens": environ.get("HUB_MAX_TOKENS", "20000"),
        "concurrency_limit_enabled": environ.get("HUB_CONCURRENCY_LIMIT", "on"),
        "concurrency_limits": environ.get("HUB_CONCURRENCY_LIMITS"),
        "concurrency_limit_default": environ.get("HUB_CONCURRENCY_LIMIT_DEFAULT", "4"),
        "concurrency_wait_seconds": environ.get("HUB_CONCURRENCY_WAIT_SECONDS", "1"),
        "access_log": environ.get("HUB_ACCESS_LOG", "on"),
        "switch_interval_ms": environ.get("HUB_SWITCH_INTERVAL_MS", "0.5"),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        url = make_url(str(values["database_url"]))
    except Exception:
        raise SettingsError("HUB_DATABASE_URL is not a database URL") from None
    problem = url_problem(url)
    if problem is not None:
        raise SettingsError(f"HUB_DATABASE_URL: {problem}")
    max_page = _int("HUB_MAX_PAGE_SIZE", values["max_page_size"])
    default_page = _int("HUB_DEFAULT_PAGE_SIZE", values["default_page_size"])
    if not 1 <= default_page <= max_page:
        raise SettingsError("HUB_DEFAULT_PAGE_SIZE must be between 1 and HUB_MAX_PAGE_SIZE")
    max_relation_page = _int("HUB_MAX_RELATION_PAGE_SIZE", values["max_relation_page_size"])
    relation_page = _int("HUB_RELATION_PAGE_SIZE", values["relation_page_size"])
    if not 1 <= relation_page <= max_relation_page:
        raise SettingsError("HUB_RELATION_PAGE_SIZE must be between 1 and HUB_MAX_RELATION_PAGE_SIZE")
    max_values = _int("HUB_MAX_VALUES", values["max_values"])
    if max_values < 1:
        raise SettingsError("HUB_MAX_VALUES must be at least 1")
    max_report_rows = _int("HUB_MAX_REPORT_ROWS", values["max_report_rows"])
    if max_report_rows < 1:
        raise SettingsError("HUB_MAX_REPORT_ROWS must be at least 1")
    max_grant_days = _int("HUB_MAX_GRANT_DAYS", values["max_grant_days"])
    if max_grant_days < 1:
        raise SettingsError("HUB_MAX_GRANT_DAYS must be at least 1")
    min_mask = _int("HUB_MIN_MASK_CANDIDATES", values["min_mask_candidates"])
    if min_mask < 1:
        raise SettingsError("HUB_MIN_MASK_CANDIDATES must be at least 1")
    max_semijoin_keys = _int("HUB_MAX_SEMIJOIN_KEYS", values["max_semijoin_keys"])
    if max_semijoin_keys < 1:
        raise SettingsError("HUB_MAX_SEMIJOIN_KEYS must be at least 1")
    cursor_key = _key("HUB_CURSOR_KEY", environ.get("HUB_CURSOR_KEY"))
    given = overrides.get("master_key")
    if given is not None and (not isinstance(given, bytes) or len(given) != 32):
        raise SettingsError("a master key is 32 bytes")
    master_key = given if isinstance(given, bytes) else _master_key(environ.get("HUB_MASTER_KEY"))
    master_key_file = Path(str(values["master_key_file"])) if values.get("master_key_file") else None
    if master_key is not None and master_key_file is not None:
        raise SettingsError("set one of HUB_MASTER_KEY and HUB_MASTER_KEY_FILE, not both")
    try:
        token_cache = float(str(values["token_cache_seconds"]))
    except ValueError:
        token_cache = -1.0
    if not 0 <= token_cache <= 60:
        raise SettingsError("HUB_TOKEN_CACHE_SECONDS must be a number of seconds from 0 to 60")
    quota_default = _int("HUB_LOOKUP_QUOTA_DEFAULT", values["lookup_quota_default"])
    if quota_default < 0:
        raise SettingsError("HUB_LOOKUP_QUOTA_DEFAULT must not be negative")
    change_poll = _seconds("HUB_CHANGE_POLL_SECONDS", values["change_poll_seconds"])
    unconfirmed_after = _seconds("HUB_UNCONFIRMED_AFTER_SECONDS", values["unconfirmed_after_seconds"])
    if unconfirmed_after <= change_poll:
        # Every instance would fail closed between two checks.
        raise SettingsError("HUB_UNCONFIRMED_AFTER_SECONDS must be longer than HUB_CHANGE_POLL_SECONDS")
    storage = str(values["limits_storage"]).strip()
    if storage not in ("memory", "memory://") and not storage.startswith(("redis://", "rediss://")):
        raise SettingsError("HUB_LIMITS_STORAGE must be memory:// or a redis:// URL")
    breaker_failures = _int("HUB_BREAKER_FAILURES", values["breaker_failures"])
    if breaker_failures < 1:
        raise SettingsError("HUB_BREAKER_FAILURES must be at least 1")
    max_body = _int("HUB_MAX_BODY_BYTES", values["max_body_bytes"])
    if max_body < 1:
        raise SettingsError("HUB_MAX_BODY_BYTES must be at least 1")
    max_variable_values = _int("HUB_MAX_VARIABLE_VALUES", values["max_variable_values"])
    if max_variable_values < 1:
        raise SettingsError("HUB_MAX_VARIABLE_VALUES must be at least 1")
    max_variable_depth = _int("HUB_MAX_VARIABLE_DEPTH", values["max_variable_depth"])
    if max_variable_depth < 1:
        raise SettingsError("HUB_MAX_VARIABLE_DEPTH must be at least 1")
    max_tokens = _int("HUB_MAX_TOKENS", values["max_tokens"])
    if max_tokens < 1:
        raise SettingsError("HUB_MAX_TOKENS must be at least 1")
    limits, limits_by_role = _limits(environ, overrides)
    concurrency_default = _int("HUB_CONCURRENCY_LIMIT_DEFAULT", values["concurrency_limit_default"])
    if concurrency_default < 1:
        raise SettingsError("HUB_CONCURRENCY_LIMIT_DEFAULT must be at least 1")
    concurrency_wait = _float("HUB_CONCURRENCY_WAIT_SECONDS", values["concurrency_wait_seconds"])
    if not 0 <= concurrency_wait <= 60:
        raise SettingsError("HUB_CONCURRENCY_WAIT_SECONDS must be a number of seconds from 0 to 60")
    switch_interval = _float("HUB_SWITCH_INTERVAL_MS", values["switch_interval_ms"])
    if not MIN_SWITCH_INTERVAL_MS <= switch_interval <= MAX_SWITCH_INTERVAL_MS:
        raise SettingsError(
            f"HUB_SWITCH_INTERVAL_MS must be a number of milliseconds from {MIN_SWITCH_INTERVAL_MS:g} "
            f"to {MAX_SWITCH_INTERVAL_MS:g}"
        )
    try:
        observe = observe_settings(environ, _flag("HUB_ACCESS_LOG", values["access_log"]))
    except ObserveSettingsError as exc:
        raise SettingsError(str(exc)) from None
    try:
        given_audit = overrides.get("audit")
        audit = given_audit if isinstance(given_audit, AuditSettings) else audit_settings(environ)
    except AuditSettingsError as exc:
        raise SettingsError(str(exc)) from None
    return Settings(
        audit=audit,
        concurrency_limit_enabled=_flag("HUB_CONCURRENCY_LIMIT", values["concurrency_limit_enabled"]),
        concurrency_limits=_concurrency_limits(values["concurrency_limits"]),
        concurrency_limit_default=concurrency_default,
        concurrency_wait_seconds=concurrency_wait,
        switch_interval_ms=switch_interval,
        observe=observe,
        rate_limit_enabled=_flag("HUB_RATE_LIMIT", values["rate_limit_enabled"]),
        rate_limits=_rates(values["rate_limits"]),
        rate_limit_default=_rate("HUB_RATE_LIMIT_DEFAULT", values["rate_limit_default"]),
        department_rate_limit=_rate("HUB_DEPARTMENT_RATE_LIMIT", values["department_rate_limit"]),
        limits_storage=storage,
        breaker_failures=breaker_failures,
        breaker_window_seconds=_seconds("HUB_BREAKER_WINDOW_SECONDS", values["breaker_window_seconds"]),
        breaker_cooldown_seconds=_seconds("HUB_BREAKER_COOLDOWN_SECONDS", values["breaker_cooldown_seconds"]),
        change_poll_seconds=change_poll,
        unconfirmed_after_seconds=unconfirmed_after,
        introspection=_flag("HUB_INTROSPECTION", values["introspection"]),
        graphiql=_flag("HUB_GRAPHIQL", values["graphiql"]),
        max_body_bytes=max_body,
        max_variable_values=max_variable_values,
        max_variable_depth=max_variable_depth,
        **limits,
        limits_by_role=limits_by_role,
        max_tokens=max_tokens,
        lookup_quotas=_quotas(values["lookup_quotas"]),
        lookup_quota_default=quota_default,
        lookup_quota_enabled=_flag("HUB_LOOKUP_QUOTA", values["lookup_quota_enabled"]),
        token_cache_seconds=token_cache,
        gateway_public_keys=_gateway_keys(str(values["gateway_public_keys"] or "")),
        trusted_documents_only=_flag("HUB_TRUSTED_DOCUMENTS_ONLY", values["trusted_documents_only"]),
        cursor_key=cursor_key,
        master_key=master_key,
        master_key_file=master_key_file,
        departments_file=Path(str(values["departments_file"])) if values.get("departments_file") else None,
        max_grant_days=max_grant_days,
        min_mask_candidates=min_mask,
        max_semijoin_keys=max_semijoin_keys,
        database_url=url,
        manifests_dir=Path(str(values["manifests_dir"])),
        # The master key stays out of what manifests may name.
        secrets={k: v for k, v in environ.items() if k != "HUB_MASTER_KEY"},
        max_page_size=max_page,
        default_page_size=default_page,
        relation_page_size=relation_page,
        max_relation_page_size=max_relation_page,
        max_values=max_values,
        max_report_rows=max_report_rows,
    )


def _with_settings_file(environ: Mapping[str, str]) -> Mapping[str, str]:
    path = environ.get("HUB_SETTINGS_FILE")
    if not path:
        return environ
    return {**read_settings_file(Path(path)), **environ}


def read_settings_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (blank lines and `#` comments skipped, `export ` and one pair of
    quotes around a value allowed): the form systemd's EnvironmentFile and docker's --env-file
    read, so one file serves all three. Errors name the line, never its value (it may be a
    secret)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise SettingsError("HUB_SETTINGS_FILE cannot be read (a UTF-8 text file of NAME=value lines)") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name.isidentifier():
            raise SettingsError(f"HUB_SETTINGS_FILE line {number} must read NAME=value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def _flag(name: str, value: object) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false")


def _quotas(value: object) -> dict[str, int]:
    """`role=n,role=n`; None keeps the defaults, an empty text lists no role."""
    if value is None:
        return dict(DEFAULT_LOOKUP_QUOTAS)
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for item in str(value).split(","):
            if not item.strip():
                continue
            role, equals, number = item.partition("=")
            if not equals or not role.strip():
                raise SettingsError("HUB_LOOKUP_QUOTAS must read role=number,role=number")
            pairs.append((role.strip(), number.strip()))
    quotas = {role: _int("HUB_LOOKUP_QUOTAS", number) for role, number in pairs}
    if any(n < 0 for n in quotas.values()):
        raise SettingsError("HUB_LOOKUP_QUOTAS must not hold a negative quota")
    return quotas


def _rate(name: str, value: object) -> str:
    """A rate such as `600/minute` (checked here, so a typo stops the start, not a request)."""
    text = str(value).strip()
    try:
        item = parse_rate(text)
    except ValueError:
        raise SettingsError(f"{name} must be a rate such as 600/minute, not {text[:40]!r}") from None
    if item.amount < 1:
        raise SettingsError(f"{name} must allow at least one request")
    return text


def _rates(value: object) -> dict[str, str]:
    """`role=600/minute,role=10/second`; None keeps the defaults."""
    if value is None:
        return dict(DEFAULT_RATE_LIMITS)
    if isinstance(value, Mapping):
        return {str(role): _rate("HUB_RATE_LIMITS", text) for role, text in value.items()}
    rates: dict[str, str] = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        role, equals, text = item.partition("=")
        if not equals or not role.strip():
            raise SettingsError("HUB_RATE_LIMITS must read role=rate,role=rate (rates such as 600/minute)")
        rates[role.strip()] = _rate("HUB_RATE_LIMITS", text)
    return rates


def _limits(
    environ: Mapping[str, str], overrides: Mapping[str, object]
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """The per-role limits: `HUB_MAX_COST=1000000,auditor=5000000` is a default and
    overrides written as HUB_LOOKUP_QUOTAS writes them; either part may be left out."""
    defaults: dict[str, int] = {}
    by_role: dict[str, dict[str, int]] = {}
    for limit, attribute in PER_ROLE_LIMITS.items():
        name = f"HUB_{attribute.upper()}"
        given = overrides.get(attribute)
        value = given if given is not None else environ.get(name)
        if value is None:
            continue
        roles: dict[str, int] = {}
        for item in str(value).split(","):
            if not item.strip():
                continue
            role, equals, number = item.partition("=")
            if not equals:
                defaults[attribute] = _int(name, role.strip())
            elif not role.strip():
                raise SettingsError(f"{name} must read number,role=number,role=number")
            else:
                roles[role.strip()] = _int(name, number.strip())
        if any(n < 0 for n in [*roles.values(), defaults.get(attribute, 0)]):
            raise SettingsError(f"{name} must not hold a negative limit")
        if roles:
            by_role[limit] = roles
    return defaults, by_role


def _concurrency_limits(value: object) -> dict[str, int]:
    """`role=n,role=n` (HUB_CONCURRENCY_LIMITS); None keeps the defaults."""
    if value is None:
        return dict(DEFAULT_CONCURRENCY_LIMITS)
    name = "HUB_CONCURRENCY_LIMITS"
    if isinstance(value, Mapping):
        limits = {str(role): _int(name, number) for role, number in value.items()}
    else:
        limits = {}
        for item in str(value).split(","):
            if not item.strip():
                continue
            role, equals, number = item.partition("=")
            if not equals or not role.strip():
                raise SettingsError(f"{name} must read role=number,role=number")
            limits[role.strip()] = _int(name, number.strip())
    if any(n < 1 for n in limits.values()):
        raise SettingsError(f"{name} must allow each role at least one request")
    return limits


def _float(name: str, value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        raise SettingsError(f"{name} must be a number") from None


def _int(name: str, value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise SettingsError(f"{name} must be a whole number") from None


def _seconds(name: str, value: object) -> float:
    """A positive number of seconds, at most a day."""
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86_400:
        raise SettingsError(f"{name} must be a number of seconds above 0, at most 86400")
    return seconds


def _key(name: str, value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise SettingsError(f"{name} must be 32 bytes in URL-safe base64") from None
    if len(key) != 32:
        raise SettingsError(f"{name} must be 32 bytes in URL-safe base64")
    return key


def _master_key(value: str | None) -> bytes | None:
    # Standard base64 (`openssl rand -base64 32`) or URL-safe, padding optional.
    if not value:
        return None
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("HUB_MASTER_KEY must be 32 bytes in base64") from None
    if len(key) != 32:
        raise SettingsError("HUB_MASTER_KEY must be 32 bytes in base64")
    return key
