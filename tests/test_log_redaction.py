"""Secrets stay out of the logs whatever writes them: records are redacted as they are made, so a
library's own handler (litellm adds one, and its DEBUG output shows requests) leaks nothing either,
MCP server headers included."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from intern.agent.guardrails.redaction import Redactor
from intern.bot.settings import Settings
from intern.bot.wiring import configure_logging

HF = "hf_loggedTokenloggedTokenloggedToken0001"
MCP_BEARER = "mcp-header-credential-0123456789abcdef"


@pytest.fixture
def library_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with a handler of its own that does not propagate, as litellm sets its loggers up."""
    out = io.StringIO()
    logger = logging.getLogger("a.library.with.its.own.handler")
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    factory = logging.getLogRecordFactory()
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(factory)


def test_debug_records_of_any_handler_are_redacted(library_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = library_logger
    servers = {"tracker": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": f"Bearer {MCP_BEARER}"}}}
    settings = Settings(HF_TOKEN=HF, INTERN_MCP_SERVERS=json.dumps(servers))  # type: ignore[call-arg]
    configure_logging(settings, Redactor(settings.secret_values()))
    logger.debug("POST https://huggingface.co/api/jobs headers={'authorization': 'Bearer %s'}", HF)
    logger.debug("MCP request headers: %s", {"Authorization": f"Bearer {MCP_BEARER}"})
    try:
        raise RuntimeError(f"refused token {HF}")
    except RuntimeError:
        logger.exception("call failed")
    text = out.getvalue()
    assert "POST https://huggingface.co/api/jobs" in text and "call failed" in text
    assert HF not in text and MCP_BEARER not in text
