"""lead quality

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quality', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('quality_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('quality_at', sa.DateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('quality_at')
        batch_op.drop_column('quality_by')
        batch_op.drop_column('quality')

