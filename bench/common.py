"""What the benchmarks share: a migrated database filled with generated leads."""
from __future__ import annotations

import time

from models.db import Database


def filled_database(db_url: str, total: int, fill) -> tuple[Database, float]:
    """Migrate `db_url`, run `fill(db, total)`; return the database and the seconds the fill took."""
    db = Database(db_url)
    db.migrate()
    started = time.perf_counter()
    fill(db, total)
    return db, time.perf_counter() - started
