"""structlog set-up shared by every process: JSON or console lines, secrets masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {"account", "api_key", "key", "authorization", "bootstrap_key", "password", "token"}
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")


def mask(value: object) -> str:
    """All but the last 4 characters replaced by '*'."""
    text = str(value)
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def _mask_secrets(event: Any) -> Any:
    if isinstance(event, dict):
        return {
            k: (mask(v) if k.lower() in SECRET_KEYS and v is not None else _mask_secrets(v))
            for k, v in event.items()
        }
    if isinstance(event, list | tuple):
        return [_mask_secrets(v) for v in event]
    if isinstance(event, str):
        return _URL_PASSWORD.sub(r"\1***\3", event)
    return event


def mask_secrets(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    return _mask_secrets(dict(event_dict))


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the stdlib root logger; safe to call more than once."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_defaults(service),
        mask_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the stdlib: route them through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _add_defaults(service: str) -> Any:
    def add(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict.setdefault("service", service)
        event_dict.setdefault("request_id", None)
        return event_dict

    return add


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
