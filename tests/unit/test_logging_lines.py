"""What a log line looks like: our lines and the libraries' (stdlib) alike, JSON or console."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator

import pytest
import structlog

from payout_core.logging import configure_logging, get_logger

REQUIRED = {"timestamp", "level", "service", "logger", "event", "request_id"}


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level, excepthook = root.handlers[:], root.level, sys.excepthook
    yield
    root.handlers[:], sys.excepthook = handlers, excepthook
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_stdlib_lines_have_the_same_fields_and_context(capsys):
    configure_logging("api", "info", "json")
    structlog.contextvars.bind_contextvars(request_id="req-1", payout_id="p-1")
    logging.getLogger("aio_pika.robust_connection").warning(
        "Connection to %s lost", "amqp://guest:s3cret@rabbit/"
    )
    get_logger("payout_api.x").info("ours")
    library, ours = json_lines(capsys)
    assert library.keys() >= REQUIRED and ours.keys() >= REQUIRED
    assert library["logger"] == "aio_pika.robust_connection" and ours["logger"] == "payout_api.x"
    assert library["event"] == "Connection to amqp://guest:***@rabbit/ lost"
    for line in (library, ours):
        assert (line["service"], line["request_id"], line["payout_id"]) == ("api", "req-1", "p-1")
    assert library["level"] == "warning" and ours["level"] == "info"


def test_library_debug_stays_out_even_at_debug_level(capsys):
    configure_logging("processor", "debug", "json")
    logging.getLogger("aiormq.connection").debug("frame received")
    get_logger("payout_processor.consumer").debug("message_received")
    assert [line["event"] for line in json_lines(capsys)] == ["message_received"]


def test_exceptions_are_text_in_the_line_and_masked(capsys):
    configure_logging("api", "info", "json")
    try:
        raise RuntimeError("refused key sk_live_0123456789abcdef")
    except RuntimeError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
        get_logger("payout_api.middlewares").exception("unhandled_error")
    lines = json_lines(capsys)
    assert len(lines) == 2, lines  # the loop below must have lines to check
    for line in lines:
        assert "RuntimeError: refused key" in line["exception"]
        assert "0123456789ab" not in line["exception"] and "cdef" in line["exception"]


def test_uncaught_exception_is_one_json_line(capsys):
    configure_logging("processor", "info", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    (line,) = json_lines(capsys)
    assert line["event"] == "uncaught_exception" and line["level"] == "critical"
    assert "ValueError: boom" in line["exception"]


def test_warnings_are_log_lines(capsys):
    configure_logging("api", "info", "json")
    warnings.warn("deprecated thing", UserWarning, stacklevel=1)
    (line,) = json_lines(capsys)
    assert line["logger"] == "py.warnings" and "deprecated thing" in line["event"]


def test_console_format_is_for_people_and_masked(capsys):
    configure_logging("api", "info", "console")
    get_logger("payout_api.app").info("hello", account="DE89370400440532013000")
    line = capsys.readouterr().err.strip()
    assert "hello" in line and "3000" in line and "DE89370400440532013000" not in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_logger_follows_a_new_configuration(capsys):
    log = get_logger("payout_processor.consumer")
    configure_logging("processor", "info", "json")
    log.debug("hidden")
    log.info("first")
    configure_logging("processor", "debug", "json")
    log.debug("shown")
    assert [line["event"] for line in json_lines(capsys)] == ["first", "shown"]
    with structlog.testing.capture_logs() as captured:  # swaps the processors in place
        log.info("captured")
    assert [line["event"] for line in captured] == ["captured"]
    assert capsys.readouterr().err == ""


def test_a_logger_is_assembled_once_per_configuration(capsys):
    configure_logging("api", "info", "json")
    factory = structlog.get_config()["logger_factory"]
    assembled = []

    def counting_factory(*args):
        assembled.append(args)
        return factory(*args)

    structlog.configure(logger_factory=counting_factory)
    log = get_logger("payout_api.middlewares")
    for n in range(3):
        log.info("line", n=n)
    assert assembled == [("payout_api.middlewares",)]
    configure_logging("api", "info", "json")
    log.info("after")
    assert len(assembled) == 1  # assembled anew, by configure_logging's own factory
    assert [line.get("n") for line in json_lines(capsys)] == [0, 1, 2, None]
