"""asgi_llm/logs.py: the access line written straight (AccessWriter) is the line logging
would write for the same fields, in both formats."""

from __future__ import annotations

import io
import json
import logging

import pytest

from asgi_llm.logs import ACCESS_LOGGER, AccessWriter, JSONFormatter, TextFormatter
from asgi_llm.server.guard import _log_record

FIELDS = {
    "method": "POST",
    "path": "/v1/chat/completions",
    "status": 200,
    "duration_ms": 1.25,
    "client": "127.0.0.1",
    "request_id": "abc123",
    "client_gone": False,
}


@pytest.fixture
def access_logger():
    logger = logging.getLogger(ACCESS_LOGGER)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.parametrize("formatter", [TextFormatter, JSONFormatter])
def test_the_written_line_is_the_line_logging_writes(access_logger, formatter, monkeypatch):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    access_logger.handlers[:] = [handler]
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.25)
    _log_record(dict(FIELDS))
    AccessWriter(handler, handler.formatter)(dict(FIELDS))
    through_logging, written = stream.getvalue().splitlines()
    assert written == through_logging
    if formatter is JSONFormatter:
        assert json.loads(written)["message"] == "POST /v1/chat/completions 200"
    else:
        assert " INFO asgi_llm.access: POST /v1/chat/completions 200 method=POST " in written


def test_no_line_below_the_level(access_logger):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access_logger.setLevel(logging.WARNING)
    AccessWriter(handler, TextFormatter())(dict(FIELDS))
    assert stream.getvalue() == ""


def test_a_broken_stream_never_fails_the_request(access_logger, capsys):
    stream = io.StringIO()
    stream.close()
    access_logger.setLevel(logging.INFO)
    AccessWriter(logging.StreamHandler(stream), TextFormatter())(dict(FIELDS))  # does not raise
    assert "Logging error" in capsys.readouterr().err  # logging's own report, as for any line
