"""Nothing loanfund logs carries a resident ID number or a token.

Engines hide statement parameters (`loanfund.db.engine`), but a database's own error text can still
hold values (PostgreSQL's "Failing row contains (…)", a unique violation's "Key (…)=(…)"), and an
exception message may quote input. This filter rewrites every record of loanfund's loggers, and the
traceback attached to it, before any handler formats it.
"""

from __future__ import annotations

import logging
import re

# 18-character resident IDs (17 digits and a digit or X), the older 15-digit ones, and tokens.
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")
TOKEN = re.compile(r"(?i:bearer)\s+\S+|lf_[A-Za-z0-9_-]{16,}")
LOGGERS = ("loanfund", "loanfund.api", "loanfund.scheduler", "uvicorn.error", "litestar")


def redact(text: str) -> str:
    return TOKEN.sub("[token]", ID_NUMBER.sub(lambda m: m.group(0)[:6] + "*" * (len(m.group(0)) - 6), text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Idempotent: every loanfund logger gets the filter once."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
