"""lead quality; indexes for KPIs (claimed_at) and App Home (claimed_by)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quality', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('quality_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('quality_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_leads_claimed_at'), ['claimed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_claimed_by'), ['claimed_by'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_claimed_by'))
        batch_op.drop_index(batch_op.f('ix_leads_claimed_at'))
        batch_op.drop_column('quality_at')
        batch_op.drop_column('quality_by')
        batch_op.drop_column('quality')

