"""CRM write-back queue: one row per lead and CRM, coalescing its changes; the outcome note on the lead

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome_note', sa.Text(), nullable=True))
    op.create_table(
        'crm_sync',
        sa.Column('lead_id', BigId, nullable=False),
        sa.Column('destination_id', sa.Integer(), nullable=False),
        sa.Column('want', sa.Integer(), nullable=False),
        sa.Column('written', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('record_id', sa.String(length=64), nullable=True),
        sa.Column('remote_stage', sa.String(length=40), nullable=True),
        sa.Column('sent', sa.JSON(), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id']),
        sa.ForeignKeyConstraint(['destination_id'], ['destinations.id']),
        sa.PrimaryKeyConstraint('lead_id', 'destination_id'),
    )
    op.create_index('ix_crm_sync_due', 'crm_sync', ['destination_id', 'state', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_table('crm_sync')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('outcome_note')
