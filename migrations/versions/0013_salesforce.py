"""Salesforce: outcomes on their way to the activity history (crm_tasks), and the mark of a record looked up
again after it was gone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('crm_sync', schema=None) as batch_op:
        batch_op.add_column(sa.Column('looked_again', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'crm_tasks',
        sa.Column('id', BigId, nullable=False),
        sa.Column('destination_id', sa.Integer(), nullable=False),
        sa.Column('lead_id', BigId, nullable=False),
        sa.Column('event_row', BigId, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('record_id', sa.String(length=64), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('written_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['destination_id'], ['destinations.id']),
        sa.ForeignKeyConstraint(['event_row'], ['events.id']),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('crm_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_crm_tasks_due', ['destination_id', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_tasks_event_row'), ['event_row'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_tasks_lead_id'), ['lead_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('crm_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_tasks_lead_id'))
        batch_op.drop_index(batch_op.f('ix_crm_tasks_event_row'))
        batch_op.drop_index('ix_crm_tasks_due')
    op.drop_table('crm_tasks')
    with op.batch_alter_table('crm_sync', schema=None) as batch_op:
        batch_op.drop_column('looked_again')
