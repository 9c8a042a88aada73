"""structlog set-up shared by every process: JSON or console lines, secrets masked.

Every line, ours or a library's (aiohttp, aio-pika, Alembic log through the stdlib), carries
timestamp, level, service, logger, event and request_id, plus payout_id where a payout is
known (bound with structlog.contextvars), and trace_id and span_id while tracing is on.
Account numbers and API keys keep their last 4 characters only: by field name anywhere in a
line, and by shape inside free text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

import orjson
import structlog

from payout_core.tracing import add_trace_ids

SECRET_KEYS = frozenset(
    {
        "account",
        "account_number",
        "iban",
        "api_key",
        "key",
        "authorization",
        "x-api-key",
        "bootstrap_key",
        "password",
        "token",
    }
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
# Secrets inside free text (exception messages, library lines): bearer credentials, our API
# keys (sk_...) and IBANs. Plain account numbers have no shape to find; the code never puts
# them in free text and the database engine hides statement parameters in its errors.
_SECRETS_IN_TEXT = re.compile(
    r"(?i:(?<=bearer )[^\s\"',]+)|\bsk_[A-Za-z0-9_\-]{4,}|\b[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}\b"
)
# What every match of either pattern contains: most text has none of it, and these tests
# cost a fraction of one search with the patterns themselves (their lookbehind and word
# boundaries are tried at every character). An IBAN starts with two letters A-Z and two
# digits 0-9: in the text's bytes with each one replaced by its class ("A", "0", else "."),
# that is "AA00" (bytes of non-ASCII characters are all >= 0x80, so they never fake one).
# A translation and a substring test run in C, five times faster than a regex search.
_BYTE_CLASSES = bytes(
    ord("A") if 65 <= b <= 90 else ord("0") if 48 <= b <= 57 else ord(".") for b in range(256)
)
_IBAN_START = b"AA00"


def _may_hold_secret(text: str) -> bool:
    return (
        "://" in text
        or "sk_" in text
        or "bearer " in text.lower()
        or _IBAN_START in text.encode("utf-8", "surrogatepass").translate(_BYTE_CLASSES)
    )


def mask(value: object) -> str:
    """All but the last 4 characters replaced by '*'."""
    text = str(value)
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def mask_text(text: str) -> str:
    if not _may_hold_secret(text):
        return text
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return _SECRETS_IN_TEXT.sub(lambda m: mask(m.group(0)), text)


def _mask_secrets(event: Any) -> Any:
    if isinstance(event, str):
        return mask_text(event)
    if isinstance(event, dict):
        return {
            k: (mask(v) if k.lower() in SECRET_KEYS and v is not None else _mask_secrets(v))
            for k, v in event.items()
        }
    if isinstance(event, list | tuple):
        return [_mask_secrets(v) for v in event]
    return event


_NESTED = (dict, list, tuple)
# Field names already found not to name a secret (the code's own few dozen, and stdlib
# records' fields): most lines then need no lower-casing of theirs. Bounded, in case some
# library logs made-up names.
_PLAIN_KEYS: set[str] = set()
_PLAIN_KEYS_MAX = 1_000


def _nothing_to_mask(event_dict: MutableMapping[str, Any]) -> bool:
    """Most lines: flat, no field named like a secret, no text shaped like one. Their texts
    are screened once, joined by newlines, instead of once a field: nothing the screen looks
    for spans a newline, so what one field holds alone the joined text holds too."""
    texts = []
    for key, value in event_dict.items():
        if key not in _PLAIN_KEYS:
            if key.lower() in SECRET_KEYS:
                return False
            if len(_PLAIN_KEYS) < _PLAIN_KEYS_MAX:
                _PLAIN_KEYS.add(key)
        if isinstance(value, _NESTED):
            return False
        if isinstance(value, str):
            texts.append(value)
    return not _may_hold_secret("\n".join(texts))


def mask_secrets(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    if _nothing_to_mask(event_dict):
        return event_dict
    return _mask_secrets(dict(event_dict))


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and the stdlib root logger; safe to call more than once."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_defaults(service),
        add_trace_ids,
        # Tracebacks become text before masking, so secrets in exception messages are masked.
        structlog.processors.format_exc_info,
        mask_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_render_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_StderrLoggerFactory(default_name=service),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the stdlib: route them through the same processors and renderer.
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library debug output (aio-pika frames, asyncio internals) is noise even at LOG_LEVEL=debug.
    root.setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


# Both writers look sys.stderr up for every line instead of holding the stream they were
# configured with: a stderr replaced later (as pytest's capture does) is followed, never a
# closed one written to.
_WRITE_LOCK = threading.Lock()


class _StderrLogger:
    """structlog's output: one rendered line to the current stderr. It knows its name, for
    add_logger_name, as stdlib loggers do."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        with _WRITE_LOCK:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    debug = info = warning = error = critical = exception = log = msg


class _StderrLoggerFactory:
    def __init__(self, default_name: str) -> None:
        self._default_name = default_name

    def __call__(self, *args: Any) -> _StderrLogger:
        return _StderrLogger(str(args[0]) if args else self._default_name)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """The stdlib side: a StreamHandler on whatever sys.stderr is at the time."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """A crash is one JSON line too, not a bare traceback."""
    get_logger("payout_core").critical("uncaught_exception", exc_info=(exc_type, exc, tb))


def _render_json(event: Any, **dumps_kw: Any) -> str:
    """orjson, several times faster than the stdlib's encoder; what it refuses (an integer
    beyond 64 bits, a lone surrogate) is rendered by the stdlib's."""
    try:
        return orjson.dumps(event, default=dumps_kw.get("default"), option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(event, **dumps_kw)


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _add_defaults(service: str) -> Any:
    def add(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict.setdefault("service", service)
        event_dict.setdefault("request_id", None)
        return event_dict

    return add


def _assembled_under() -> tuple[Any, ...]:
    """What an assembled logger depends on: structlog's current configuration, by identity."""
    config = structlog.get_config()
    return (
        config["processors"],
        config["wrapper_class"],
        config["context_class"],
        config["logger_factory"],
    )


class _Logger:
    """A structlog logger assembled once per configuration.

    structlog's own proxy assembles a new bound logger at every call unless told to cache it
    (about a fifth of a line's CPU), and a cached one keeps the level and processors of its
    first configuration whatever configure_logging(), structlog.reset_defaults() or a test do
    later. This one assembles again when the configuration is no longer the one it was
    assembled under. structlog.testing.capture_logs() swaps the processors in place (the same
    list), so it still sees every line.
    """

    __slots__ = ("_bound", "_name", "_under")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._bound: Any = None
        self._under: tuple[Any, ...] | None = None

    def __getattr__(self, attribute: str) -> Any:
        under = _assembled_under()
        if self._under is None or any(a is not b for a, b in zip(under, self._under, strict=True)):
            proxy = structlog.get_logger(self._name) if self._name else structlog.get_logger()
            self._bound, self._under = proxy.bind(), under
        return getattr(self._bound, attribute)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; `name` (the module) is the `logger` field of its lines."""
    return _Logger(name)
