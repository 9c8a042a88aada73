"""Settings read from the environment, validated once at start.

A bad value raises ConfigError naming the variable; entry points print it as one line and exit 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "console")


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


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql://postgres@127.0.0.1:5432/payouts"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    api_host: str = "0.0.0.0"
    api_port: int = 8000
    processor_http_port: int = 8001
    api_bootstrap_key: str | None = None
    log_level: str = "info"
    log_format: str = "json"
    provider_delay_ms: int = 200
    provider_failure_rate: float = 0.0
    processor_concurrency: int = 16
    processor_prefetch: int = 32
    processor_max_attempts: int = 5
    processor_retry_base_ms: int = 1000
    shutdown_grace_s: float = 20.0
    reconcile_interval_s: float = 30.0
    reconcile_stuck_after_s: float = 300.0
    outbox_poll_interval_ms: int = 1000
    db_pool_size: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, parse: Callable[[str, str], T], default: T) -> T:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            return parse(name, raw)

        default_format = "json" if not sys.stderr.isatty() else "console"
        bootstrap = env.get("API_BOOTSTRAP_KEY") or None
        if bootstrap is not None and len(bootstrap) < 16:
            raise ConfigError("API_BOOTSTRAP_KEY must be at least 16 characters")
        return cls(
            database_url=get(
                "DATABASE_URL",
                lambda n, r: _url(n, r, ("postgresql", "postgres")),
                cls.database_url,
            ),
            amqp_url=get("AMQP_URL", lambda n, r: _url(n, r, ("amqp", "amqps")), cls.amqp_url),
            api_host=get("API_HOST", lambda n, r: r, cls.api_host),
            api_port=get("API_PORT", lambda n, r: _int(n, r, 0, 65535), cls.api_port),
            processor_http_port=get(
                "PROCESSOR_HTTP_PORT", lambda n, r: _int(n, r, 0, 65535), cls.processor_http_port
            ),
            api_bootstrap_key=bootstrap,
            log_level=get("LOG_LEVEL", lambda n, r: _choice(n, r, LOG_LEVELS), cls.log_level),
            log_format=get("LOG_FORMAT", lambda n, r: _choice(n, r, LOG_FORMATS), default_format),
            provider_delay_ms=get(
                "PROVIDER_DELAY_MS", lambda n, r: _int(n, r, 0, 600_000), cls.provider_delay_ms
            ),
            provider_failure_rate=get(
                "PROVIDER_FAILURE_RATE",
                lambda n, r: _float(n, r, 0.0, 1.0),
                cls.provider_failure_rate,
            ),
            processor_concurrency=get(
                "PROCESSOR_CONCURRENCY", lambda n, r: _int(n, r, 1, 1000), cls.processor_concurrency
            ),
            processor_prefetch=get(
                "PROCESSOR_PREFETCH", lambda n, r: _int(n, r, 1, 10_000), cls.processor_prefetch
            ),
            processor_max_attempts=get(
                "PROCESSOR_MAX_ATTEMPTS", lambda n, r: _int(n, r, 1, 20), cls.processor_max_attempts
            ),
            processor_retry_base_ms=get(
                "PROCESSOR_RETRY_BASE_MS",
                lambda n, r: _int(n, r, 1, 3_600_000),
                cls.processor_retry_base_ms,
            ),
            shutdown_grace_s=get(
                "SHUTDOWN_GRACE_S", lambda n, r: _float(n, r, 0.0, 3600.0), cls.shutdown_grace_s
            ),
            reconcile_interval_s=get(
                "RECONCILE_INTERVAL_S",
                lambda n, r: _float(n, r, 0.1, 86_400.0),
                cls.reconcile_interval_s,
            ),
            reconcile_stuck_after_s=get(
                "RECONCILE_STUCK_AFTER_S",
                lambda n, r: _float(n, r, 0.1, 86_400.0),
                cls.reconcile_stuck_after_s,
            ),
            outbox_poll_interval_ms=get(
                "OUTBOX_POLL_INTERVAL_MS",
                lambda n, r: _int(n, r, 10, 600_000),
                cls.outbox_poll_interval_ms,
            ),
            db_pool_size=get("DB_POOL_SIZE", lambda n, r: _int(n, r, 1, 200), cls.db_pool_size),
        )


def load_or_exit(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for an entry point: one clear line on stderr and exit 2 on a bad value."""
    try:
        return Settings.from_env(env)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
