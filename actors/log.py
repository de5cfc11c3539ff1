"""Structured lifecycle logs: one event per order step, keyed by order, account and symbol.

The brokerage's logger is its own (it does not touch structlog's global configuration), writes
JSON lines to stderr, and is filtered by level, so that a quiet level costs almost nothing.
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")


def make_logger(level: str = "warning", stream: TextIO | None = None) -> Any:
    """Return a structlog logger that drops events below `level` ("debug" ... "critical")."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, was {level!r}")
    return structlog.wrap_logger(
        structlog.PrintLogger(stream or sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        cache_logger_on_first_use=True,
    )


def where(error: BaseException, frames: int = 6) -> list[str]:
    """The innermost `frames` frames of an error's traceback as "file:line in function": where
    it happened, and nothing of the values it held (no locals, no message), so that logging it
    can leak no secret and costs microseconds whatever the input was."""
    return [
        f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)[-frames:]
    ]
