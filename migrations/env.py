"""Alembic environment: runs on the connection Handoff hands it, or on DATABASE_URL."""
from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.exc import SAWarning

from models.tables import Base, declared

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from settings import load_settings

    return load_settings().DATABASE_URL


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, include_object=declared)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, include_object=declared)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True,
                          include_object=declared)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


# A batch operation (every migration here is written as one, for SQLite) reads its table and the tables its
# foreign keys name back from the database first. SQLite's reflection cannot read an index on an expression
# (ix_leads_email_domain, on the email's domain: 0010, 0011) and says so at every `migrate`. Adding columns and
# indexes keeps the index where it is (tests/models/test_account_owner_lookup.py sees the lookup use it after a
# migration), so the warning tells an operator nothing.
warnings.filterwarnings("ignore", r"Skipped unsupported reflection of expression-based index", SAWarning)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
