"""personal data: the mark of an erased lead, the conversation a sent message is in, the log of erasures, suppressed emails' digests and the
installation's keys

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_leads_retention', ['updated_at'], unique=False,
                              sqlite_where=sa.text('erased_at IS NULL'), postgresql_where=sa.text('erased_at IS NULL'))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result_channel', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('result_detail', sa.JSON(), nullable=True))
        batch_op.create_index('ix_outbox_digests', ['id'], unique=False, sqlite_where=sa.text("kind = 'digest'"),
                              postgresql_where=sa.text("kind = 'digest'"))
    op.create_table(
        'erasures',
        sa.Column('id', BigId, nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('how', sa.String(length=16), nullable=False),
        sa.Column('leads', sa.Integer(), nullable=False),
        sa.Column('lead_ids', sa.JSON(), nullable=False),
        sa.Column('suppressed', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_at'), ['at'], unique=False)
    op.create_table(
        'suppressions',
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('digest'),
    )
    op.create_table(
        'installation_keys',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('value', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('installation_keys')
    op.drop_table('suppressions')
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasures_at'))
    op.drop_table('erasures')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_digests', sqlite_where=sa.text("kind = 'digest'"),
                            postgresql_where=sa.text("kind = 'digest'"))
        batch_op.drop_column('result_detail')
        batch_op.drop_column('result_channel')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_retention', sqlite_where=sa.text('erased_at IS NULL'),
                            postgresql_where=sa.text('erased_at IS NULL'))
        batch_op.drop_column('erased_at')
