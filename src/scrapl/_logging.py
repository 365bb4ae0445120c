"""Logging for the ``scrapl`` loggers, printed like the reference package's by default.

scrapl-loss 0.1.0 calls ``logging.basicConfig()`` at import, so its INFO lines show as
``INFO:scrapl.scrapl_loss:...``. A library should not configure the root logger, so instead the
``scrapl`` logger gets a fallback handler in that format which stays silent as soon as the root logger
has a handler of its own (then records simply propagate there, e.g. to pytest's caplog). The level
comes from the environment variable ``SCRAPL_LOGLEVEL`` (or ``LOGLEVEL``), default INFO.
"""

from __future__ import annotations

import logging
import os
import sys

from tqdm.auto import tqdm

__all__ = ["get_logger"]


class _FallbackHandler(logging.StreamHandler):
    """Print to stderr only while nobody configured the root logger."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return
        try:  # through tqdm, so that a running progress bar is redrawn below the line
            tqdm.write(self.format(record), file=sys.stderr)  # follows redirections (capsys)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _configure() -> None:
    root = logging.getLogger("scrapl")
    if any(isinstance(h, _FallbackHandler) for h in root.handlers):
        return
    handler = _FallbackHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    root.addHandler(handler)
    level = os.environ.get("SCRAPL_LOGLEVEL", os.environ.get("LOGLEVEL", "INFO")).upper()
    root.setLevel(level if level in logging._nameToLevel else logging.INFO)


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name`` (under ``scrapl``), with the fallback handler installed."""
    _configure()
    return logging.getLogger(name)
