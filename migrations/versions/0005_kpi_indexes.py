"""partial indexes for the KPI "overdue now" count

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

UNCLAIMED = "claimed_at IS NULL AND mql_at IS NOT NULL"
CLAIMED = "claimed_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_claimed_at')
        batch_op.create_index('ix_leads_claimed_at', ['claimed_at'], unique=False,
                              sqlite_where=sa.text(CLAIMED), postgresql_where=sa.text(CLAIMED))
        batch_op.create_index('ix_leads_unclaimed_due', ['claim_due', 'mql_at', 'lost_at', 'disqualified_at'],
                              unique=False, sqlite_where=sa.text(UNCLAIMED), postgresql_where=sa.text(UNCLAIMED))


def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_unclaimed_due')
        batch_op.drop_index('ix_leads_claimed_at')
        batch_op.create_index('ix_leads_claimed_at', ['claimed_at'], unique=False)
