"""Writes gathered over a batch of changes and made at its end in a few statements (docs/crm-status.md).

A click changes one lead and its effects (outbox rows, events, SLA timers) are written as they happen. A batch
of 500 status updates from the CRM runs the same domain code 500 times; inside `deferring(session)` those
effects are gathered instead, each as the change left things (an event's body is the lead as it was right after
its change), and written together when the batch is done, in its transaction. The modules that own each kind
of row (models/outbox.py, models/events.py, models/sla.py) check `of(session)` and register how their rows are
written; this module knows none of them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

KEY = "handoff.deferred"


class Deferred:
    """The rows gathered so far, by part (outbox, events, timers), each with the function that writes them."""

    def __init__(self):
        self._parts: dict[str, tuple[Any, Callable[[Session, Any], None]]] = {}

    def part(self, name: str, new: Callable[[], Any], writer: Callable[[Session, Any], None]) -> Any:
        """The gathered state of one part (made by `new` the first time), written by `writer` at the end."""
        if name not in self._parts:
            self._parts[name] = (new(), writer)
        return self._parts[name][0]

    def write(self, session: Session) -> None:
        session.flush()  # the leads and audit entries the rows refer to
        for state, writer in self._parts.values():
            writer(session, state)
        self._parts.clear()


def flush_now(session: Session) -> None:
    """Flush the session's changes now, unless a deferring batch writes them with its own at its end."""
    if KEY not in session.info:
        session.flush()


def of(session: Session) -> Deferred | None:
    """The batch gathering this session's writes, if any."""
    return session.info.get(KEY)


@contextmanager
def deferring(session: Session) -> Iterator[Deferred]:
    """Gather the effects of the changes made inside, and write them when it ends without an error."""
    batch = session.info[KEY] = Deferred()
    try:
        yield batch
    finally:
        session.info.pop(KEY, None)
    batch.write(session)  # after an error there is nothing to write: the transaction is rolled back
