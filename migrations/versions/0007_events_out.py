"""events out: destinations, events and their deliveries; the card's permalink on the lead

Every change of a lead is an event row written with the change; each endpoint of EVENT_WEBHOOK_URLS gets a
delivery row per event (docs/events.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_url', sa.String(length=300), nullable=True))
    op.create_table(
        'destinations',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'url', name='uq_destinations_kind_url'),
    )
    op.create_table(
        'events',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('event_id', sa.String(length=40), nullable=False),
        sa.Column('type', sa.String(length=40), nullable=False),
        sa.Column('lead_id', BigId, nullable=True),
        sa.Column('occurred_at', sa.DateTime(), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('event_id'),
    )
    op.create_index('ix_events_lead_id', 'events', ['lead_id'])
    op.create_index('ix_events_occurred_at', 'events', ['occurred_at'])
    op.create_table(
        'event_deliveries',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('event_row', BigId, nullable=False),
        sa.Column('destination_id', sa.Integer(), nullable=False),
        sa.Column('lead_id', BigId, nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['event_row'], ['events.id']),
        sa.ForeignKeyConstraint(['destination_id'], ['destinations.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_event_deliveries_event_row', 'event_deliveries', ['event_row'])
    op.create_index('ix_event_deliveries_due', 'event_deliveries', ['destination_id', 'status', 'next_attempt_at'])
    op.create_index('ix_event_deliveries_lead', 'event_deliveries', ['destination_id', 'lead_id', 'status', 'id'])
    op.create_index('ix_event_deliveries_status', 'event_deliveries', ['status'])


def downgrade() -> None:
    op.drop_table('event_deliveries')
    op.drop_table('events')
    op.drop_table('destinations')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('card_url')
