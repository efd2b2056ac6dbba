"""the email domain's index also holds who claimed each lead and its team, so the account owner's lookup reads
the index alone (no row of the leads table per lead of the company)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


# The same expression as 0010's (models/ownership.py `domain_of` writes it so in its query).
DOMAIN = {"postgresql": "substr(email_norm, strpos(email_norm, '@') + 1)",
          "sqlite": "substr(email_norm, instr(email_norm, '@') + 1)"}


# What the lookup reads besides the domain and claim time: who claimed, the team, the email the domain is
# computed from and (PostgreSQL) the id its order ends with; SQLite's rowid is in every index already.
COVERING = {"postgresql": "claimed_at) INCLUDE (claimed_by, team, email_norm, id",
            "sqlite": "claimed_at, claimed_by, team, email_norm"}


def _create(columns: str) -> None:
    op.execute(f"CREATE INDEX ix_leads_email_domain ON leads ({DOMAIN[op.get_bind().dialect.name]}, {columns}) "
               "WHERE claimed_at IS NOT NULL")


def upgrade() -> None:
    op.execute("DROP INDEX ix_leads_email_domain")
    _create(COVERING[op.get_bind().dialect.name])


def downgrade() -> None:
    op.execute("DROP INDEX ix_leads_email_domain")
    _create("claimed_at")
