"""The click queue: each card button click, written down under its request's name and applied once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'clicks',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('request_key', sa.String(length=64), nullable=False),
        sa.Column('action_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.Column('request_id', sa.String(length=128), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_key'),
    )
    op.create_index('ix_clicks_pending', 'clicks', ['id'], postgresql_where=sa.text('done_at IS NULL'),
                    sqlite_where=sa.text('done_at IS NULL'))
    op.create_index('ix_clicks_done_at', 'clicks', ['done_at'])


def downgrade() -> None:
    op.drop_table('clicks')
