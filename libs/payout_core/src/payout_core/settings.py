"""Settings read from the environment, validated once at start.

A bad value raises ConfigError naming the variable; entry points print it as one line and exit 2.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from payout_core.db.dsn import InvalidDatabaseUrl
from payout_core.db.dsn import parse as parse_database_url

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")
# The OpenTelemetry SDK's own samplers (OTEL_TRACES_SAMPLER).
TRACES_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


class ConfigError(Exception):
    """A variable of the environment has a value the service cannot use."""


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(name: str, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(
            f"{name} must be a URL like {schemes[0]}://user@host:port/..., got {raw!r}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {raw!r}") from None
    return raw


def _amqp_urls(name: str, raw: str) -> str:
    """One AMQP URL, or a comma-separated list of them: the nodes of one cluster."""
    urls = split_amqp_urls(raw)
    if not urls:
        raise ConfigError(f"{name} must be a URL like amqp://user@host:port/..., got {raw!r}")
    for url in urls:
        _url(name, url, ("amqp", "amqps"))
    return raw


def split_amqp_urls(raw: str) -> list[str]:
    return [url.strip() for url in raw.split(",") if url.strip()]


def _database_url(name: str, raw: str) -> str:
    """libpq's URL, one host or several (postgresql://u@h1:5432,h2:5432/db?...)."""
    try:
        parse_database_url(raw)
    except InvalidDatabaseUrl as exc:
        raise ConfigError(
            f"{name} must be a URL like postgresql://user@host:port/db "
            f"(or host1:port1,host2:port2 for a cluster); it {exc}"
        ) from None
    return raw


Parser = Callable[[str, str], Any]


def _ints(low: int, high: int) -> Parser:
    return lambda name, raw: _int(name, raw, low, high)


def _floats(low: float, high: float) -> Parser:
    return lambda name, raw: _float(name, raw, low, high)


def _choices(choices: tuple[str, ...]) -> Parser:
    return lambda name, raw: _choice(name, raw, choices)


def _urls(*schemes: str) -> Parser:
    return lambda name, raw: _url(name, raw, schemes)


def _text(_name: str, raw: str) -> str:
    return raw


def _base_url(name: str, raw: str) -> str:
    """A URL the API is reached at from outside (scheme, host, optional path prefix)."""
    _url(name, raw, ("https", "http"))
    parts = urlsplit(raw)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{name} must be a plain base URL like https://host/prefix, got {raw!r}")
    return raw.rstrip("/")


def _secret(name: str, raw: str) -> str:
    if len(raw) < 16:
        raise ConfigError(f"{name} must be at least 16 characters")
    return raw


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return value in ("1", "true")


def _schedule(name: str, raw: str) -> tuple[float, ...]:
    """Comma-separated seconds, e.g. 5,300,1800: the waits before each retry."""
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(
            f"{name} must be comma-separated seconds like 5,300,1800, got {raw!r}"
        ) from None
    if len(values) > 50 or any(not 0.001 <= v <= 7 * 86_400 for v in values):
        raise ConfigError(f"{name} must hold at most 50 waits of 0.001 to 604800 s, got {raw!r}")
    return values


def _fernet_keys(name: str, raw: str) -> str:
    """Comma-separated Fernet keys: each url-safe base64 of 32 bytes."""
    for key in raw.split(","):
        try:
            decoded = base64.urlsafe_b64decode(key.strip().encode())
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != 32:
            raise ConfigError(
                f"{name} must be Fernet keys (url-safe base64 of 32 bytes), comma-separated; "
                "make one with: python -c 'import base64,os; print(base64.urlsafe_b64encode("
                "os.urandom(32)).decode())'"
            )
    return raw


def _env(name: str, parse: Parser, default: Any) -> Any:
    """A setting read from the environment variable `name` (unset or empty: the default)."""
    return field(default=default, metadata={"env": name, "parse": parse})


@dataclass(frozen=True)
class Settings:
    # One host or libpq's multi-host form; with several, only a writable primary is used.
    database_url: str = _env(
        "DATABASE_URL", _database_url, "postgresql://postgres@127.0.0.1:5432/payouts"
    )
    # One URL or a comma-separated list (a cluster's nodes): any reachable one is used.
    amqp_url: str = _env("AMQP_URL", _amqp_urls, "amqp://guest:guest@127.0.0.1:5672/")
    # The address both services listen on (the API's port, the processor's HTTP port); its
    # variable keeps the documented name API_HOST.
    bind_host: str = _env("API_HOST", _text, "0.0.0.0")
    api_port: int = _env("API_PORT", _ints(0, 65535), 8000)
    # Where clients reach the API (links in responses); unset: links are relative. Never the
    # request's Host header, which the client controls.
    public_base_url: str | None = _env("PUBLIC_BASE_URL", _base_url, None)
    processor_http_port: int = _env("PROCESSOR_HTTP_PORT", _ints(0, 65535), 8001)
    api_bootstrap_key: str | None = _env("API_BOOTSTRAP_KEY", _secret, None)
    log_level: str = _env("LOG_LEVEL", _choices(LOG_LEVELS), "info")
    # Default: JSON unless a person is watching a terminal.
    log_format: str = _env("LOG_FORMAT", _choices(LOG_FORMATS), "")
    provider_delay_ms: int = _env("PROVIDER_DELAY_MS", _ints(0, 600_000), 200)
    provider_failure_rate: float = _env("PROVIDER_FAILURE_RATE", _floats(0.0, 1.0), 0.0)
    # Payouts one processor works on at once. Processing is I/O-bound: a payout in flight
    # mostly waits on the provider, costs a task and a message (a few KB), and holds a
    # database connection only for its batched START/FINISH statements; so the default is
    # sized for a provider answering in about a second (≈ this many payouts/s). Lower it to
    # the provider's own limit on concurrent requests, if it has one (docs/performance.md).
    processor_concurrency: int = _env("PROCESSOR_CONCURRENCY", _ints(1, 1000), 256)
    processor_prefetch: int = _env("PROCESSOR_PREFETCH", _ints(1, 10_000), 512)
    processor_max_attempts: int = _env("PROCESSOR_MAX_ATTEMPTS", _ints(1, 20), 5)
    processor_retry_base_ms: int = _env("PROCESSOR_RETRY_BASE_MS", _ints(1, 3_600_000), 1000)
    shutdown_grace_s: float = _env("SHUTDOWN_GRACE_S", _floats(0.0, 3600.0), 20.0)
    reconcile_interval_s: float = _env("RECONCILE_INTERVAL_S", _floats(0.1, 86_400.0), 30.0)
    reconcile_stuck_after_s: float = _env("RECONCILE_STUCK_AFTER_S", _floats(0.1, 86_400.0), 300.0)
    outbox_poll_interval_ms: int = _env("OUTBOX_POLL_INTERVAL_MS", _ints(10, 600_000), 1000)
    # PostgreSQL connections per process, all kept open (no overflow).
    db_pool_size: int = _env("DB_POOL_SIZE", _ints(1, 200), 20)
    # API processes sharing API_PORT (SO_REUSEPORT); 1: a single process, no fork.
    api_workers: int = _env("API_WORKERS", _ints(1, 64), 1)
    # How long an API process trusts a key it has checked (a disabled key works this long).
    api_key_cache_ttl_s: float = _env("API_KEY_CACHE_TTL_S", _floats(0.0, 300.0), 5.0)
    # A token bucket per API key in each API process: RATE_LIMIT_PER_S tokens a second, holding
    # at most RATE_LIMIT_BURST; a request without a token is a 429. RATE_LIMIT_PER_S=0: no limit.
    rate_limit_per_s: float = _env("RATE_LIMIT_PER_S", _floats(0.0, 1_000_000.0), 100.0)
    rate_limit_burst: int = _env("RATE_LIMIT_BURST", _ints(1, 1_000_000), 200)
    # The payout provider the processor and the reconciler call (docs/reliability.md).
    provider_url: str = _env("PROVIDER_URL", _urls("http", "https"), "http://127.0.0.1:8002")
    # How long the processor waits for the provider's answer; no answer in time is in doubt.
    provider_timeout_s: float = _env("PROVIDER_TIMEOUT_S", _floats(0.1, 600.0), 10.0)
    # Reconciler re-enqueues per payout before it is flagged for operators instead.
    reconcile_max_reenqueues: int = _env("RECONCILE_MAX_REENQUEUES", _ints(0, 1000), 5)
    # Housekeeping: seconds between runs, rows deleted per statement, what is kept how long.
    housekeeping_interval_s: float = _env("HOUSEKEEPING_INTERVAL_S", _floats(0.1, 86_400.0), 60.0)
    housekeeping_batch: int = _env("HOUSEKEEPING_BATCH", _ints(1, 100_000), 1000)
    outbox_keep_published_s: float = _env(
        "OUTBOX_KEEP_PUBLISHED_S", _floats(0.0, 30 * 86_400.0), 3600.0
    )
    dead_letter_keep_s: float = _env("DEAD_LETTER_KEEP_S", _floats(0.0, 365 * 86_400.0), 604_800.0)
    # The simulated provider (payout-provider-sim); "" for its database: DATABASE_URL's server,
    # database payout_provider_sim.
    provider_sim_host: str = _env("PROVIDER_SIM_HOST", _text, "127.0.0.1")
    provider_sim_port: int = _env("PROVIDER_SIM_PORT", _ints(0, 65535), 8002)
    provider_sim_database_url: str = _env(
        "PROVIDER_SIM_DATABASE_URL", _urls("postgresql", "postgres"), ""
    )
    # How long the simulated provider honours an idempotency key (Stripe: 24 h).
    provider_sim_retention_s: float = _env(
        "PROVIDER_SIM_RETENTION_S", _floats(0.0, 30 * 86_400.0), 86_400.0
    )
    # How late the slow test account answers (beyond PROVIDER_TIMEOUT_S by default).
    provider_sim_slow_answer_ms: int = _env("PROVIDER_SIM_SLOW_ANSWER_MS", _ints(0, 3_600_000), 0)
    # Test-only control endpoints (/test/...) of the simulated provider; never in production.
    provider_sim_test_controls: bool = _env("PROVIDER_SIM_TEST_CONTROLS", _flag, False)
    # An API request still waiting for PostgreSQL after this long is answered 503 (a database
    # that stopped answering, without closing connections, must not hold callers for minutes).
    api_db_timeout_s: float = _env("API_DB_TIMEOUT_S", _floats(0.5, 300.0), 5.0)
    # API requests queued for a pooled connection, per process; more are answered 503 at once.
    api_db_max_waiting: int = _env("API_DB_MAX_WAITING", _ints(1, 100_000), 200)
    # Tracing (payout_core.tracing): the OpenTelemetry SDK reads these variables itself, and
    # would only warn about a bad value; checked here so that one stops the service at start.
    otel_exporter_otlp_endpoint: str | None = _env(
        "OTEL_EXPORTER_OTLP_ENDPOINT", _urls("http", "https"), None
    )
    otel_exporter_otlp_traces_endpoint: str | None = _env(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", _urls("http", "https"), None
    )
    otel_traces_sampler: str = _env(
        "OTEL_TRACES_SAMPLER", _choices(TRACES_SAMPLERS), "parentbased_always_on"
    )
    otel_traces_sampler_arg: float | None = _env("OTEL_TRACES_SAMPLER_ARG", _floats(0.0, 1.0), None)
    # Webhooks (docs/webhooks.md): deliveries made by the processor at most this many at once.
    webhook_concurrency: int = _env("WEBHOOK_CONCURRENCY", _ints(1, 1000), 16)
    webhook_timeout_s: float = _env("WEBHOOK_TIMEOUT_S", _floats(0.1, 60.0), 10.0)
    # The Standard Webhooks schedule: the waits before retries 1, 2, ... after a failed attempt.
    webhook_retry_schedule_s: tuple[float, ...] = _env(
        "WEBHOOK_RETRY_SCHEDULE_S", _schedule, (5, 300, 1800, 7200, 18000, 36000, 36000)
    )
    # An endpoint whose every attempt failed for this long is disabled (5 days).
    webhook_disable_after_s: float = _env(
        "WEBHOOK_DISABLE_AFTER_S", _floats(1.0, 365 * 86_400.0), 432_000.0
    )
    # true: http:// and private, loopback, link-local addresses allowed (local development only).
    webhook_allow_private_urls: bool = _env("WEBHOOK_ALLOW_PRIVATE_URLS", _flag, False)
    # Fernet key(s), comma-separated, the first encrypts: endpoint secrets at rest. Unset: stored
    # unprotected (a warning at start); the chart requires it.
    webhook_secret_key: str | None = _env("WEBHOOK_SECRET_KEY", _fernet_keys, None)
    # How long the previous secret still signs after a rotation.
    webhook_secret_overlap_s: float = _env(
        "WEBHOOK_SECRET_OVERLAP_S", _floats(0.0, 7 * 86_400.0), 86_400.0
    )
    # Events (and delivery attempts) are kept this long, at least 30 days, then pruned by
    # housekeeping.
    webhook_event_retention_s: float = _env(
        "WEBHOOK_EVENT_RETENTION_S", _floats(2_592_000.0, 3650 * 86_400.0), 2_592_000.0
    )

    def __post_init__(self) -> None:
        if not self.log_format:
            object.__setattr__(self, "log_format", "console" if sys.stderr.isatty() else "json")
        if not self.provider_sim_database_url:
            sim_url = urlsplit(self.database_url)._replace(path="/payout_provider_sim").geturl()
            object.__setattr__(self, "provider_sim_database_url", sim_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw:
                values[f.name] = f.metadata["parse"](f.metadata["env"], raw)
        return cls(**values)


def load_or_exit(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for an entry point: one clear line on stderr and exit 2 on a bad value."""
    try:
        return Settings.from_env(env)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
