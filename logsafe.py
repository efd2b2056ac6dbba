"""Logs without personal data: no lead's email in any line Handoff writes (docs/failures.md).

The code logs lead ids, never emails or names, and SQL errors carry no parameters (the engines are made
with `hide_parameters`). What neither can stop is a database's own message quoting a value, such as
PostgreSQL's "Key (email_norm)=(ken@example.com) already exists", inside a traceback. The formatter
installed here masks every email address in the finished line, tracebacks included.
"""
from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[^\s@<>()\"',;:\[\]=]+@[^\s@<>()\"',;:\[\]=]+\.[A-Za-z0-9-]+")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def mask(text: str) -> str:
    return EMAIL.sub("<email>", text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure(level: int = logging.INFO) -> None:
    """Root logging for every command: one line per record, emails masked."""
    logging.basicConfig(level=level, format=FORMAT)
    # APScheduler says at INFO that each run started and ended: two lines a minute for the sweep alone. The jobs
    # log what they did themselves (jobs/scheduler.py); a run that fails or is missed is still APScheduler's
    # ERROR or WARNING line.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(FORMAT))
