"""teams: the team each MQL was routed to and why; a round-robin rotation per team; leads by company domain;
the second handoff (who qualified an SQL, the team it was handed to, that team's claim and card)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


# The account owner (models/ownership.py `account_owners`) finds the leads claimed from a company by the domain
# of their email: an index on that expression, the same one the query uses (models/ownership.py `domain_of`).
DOMAIN = {"postgresql": "substr(email_norm, strpos(email_norm, '@') + 1)",
          "sqlite": "substr(email_norm, instr(email_norm, '@') + 1)"}


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('routed_by', sa.String(length=60), nullable=True))
        batch_op.create_index(batch_op.f('ix_leads_team'), ['team'], unique=False)
        batch_op.add_column(sa.Column('qualified_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('handed_to', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('handed_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('handed_claim_due', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('handed_claimed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('handed_claimed_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('handed_card_channel', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('handed_card_ts', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_leads_handed_to'), ['handed_to'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_handed_claimed_by'), ['handed_claimed_by'], unique=False)
    op.execute(f"CREATE INDEX ix_leads_email_domain ON leads ({DOMAIN[op.get_bind().dialect.name]}, claimed_at) "
               "WHERE claimed_at IS NOT NULL")
    with op.batch_alter_table('assignment_state', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sa.String(length=32), type_=sa.String(length=64),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('assignment_state', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sa.String(length=64), type_=sa.String(length=32),
                              existing_nullable=False)
    op.execute("DROP INDEX ix_leads_email_domain")
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_handed_claimed_by'))
        batch_op.drop_index(batch_op.f('ix_leads_handed_to'))
        for column in ('handed_card_ts', 'handed_card_channel', 'handed_claimed_by', 'handed_claimed_at',
                       'handed_claim_due', 'handed_note', 'handed_to', 'qualified_by'):
            batch_op.drop_column(column)
        batch_op.drop_index(batch_op.f('ix_leads_team'))
        batch_op.drop_column('routed_by')
        batch_op.drop_column('team')
