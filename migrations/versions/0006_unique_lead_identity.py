"""one lead per person: merge leads that share a normalised email, then make email_norm unique

Before this revision two concurrent webhooks for one new email could each insert a lead. This
merges every such group into its oldest lead (the lowest id) and lets the database refuse the next
one. How the merge chooses each field is described in docs/identity.md.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

CONTACT = ("name", "company", "title", "external_id")
LIFECYCLE = ("mql_at", "claim_due", "contact_due", "claimed_at", "claimed_by", "contacted_at", "sql_at", "won_at",
             "lost_at", "lost_reason", "disqualified_at", "disqualify_reason", "quality", "quality_by", "quality_at",
             "offered_to", "offer_until", "card_channel", "card_ts")

leads = sa.table("leads", sa.column("id"), sa.column("email_norm"), sa.column("score"), sa.column("source"),
                 sa.column("attributes", sa.JSON), sa.column("updated_at"), *(sa.column(c) for c in CONTACT),
                 *(sa.column(c) for c in LIFECYCLE))
audit = sa.table("audit_events", sa.column("lead_id"), sa.column("at"), sa.column("actor"), sa.column("action"),
                 sa.column("detail", sa.JSON))
outbox = sa.table("outbox", sa.column("lead_id"), sa.column("status"), sa.column("last_error"))
timers = sa.table("sla_timers", sa.column("lead_id"))


def merged(rows):
    """The values the kept lead (rows[0], the oldest) takes from the whole group, and why."""
    keep = rows[0]
    values = {}
    for name in CONTACT:  # the first value any of them has, oldest first
        if keep[name] is None:
            values[name] = next((r[name] for r in rows if r[name] is not None), None)
    newest = max(rows, key=lambda r: (r["updated_at"], r["id"]))
    values["score"] = newest["score"]
    if keep["source"] in (None, "other"):
        values["source"] = next((r["source"] for r in rows if r["source"] not in (None, "other")), keep["source"])
    attributes = {}
    for r in sorted(rows, key=lambda r: (r["updated_at"], r["id"])):
        attributes.update(r["attributes"] or {})
    values["attributes"] = attributes
    # One card and one story: the lifecycle of the first of them that was handed off.
    handed_off = next((r for r in rows if r["mql_at"] is not None), keep)
    if handed_off is not keep:
        values.update({name: handed_off[name] for name in LIFECYCLE})
    return values, handed_off["id"]


def upgrade() -> None:
    bind = op.get_bind()
    groups = bind.execute(sa.select(leads.c.email_norm).group_by(leads.c.email_norm)
                          .having(sa.func.count() > 1)).scalars().all()
    now = datetime.now(UTC).replace(tzinfo=None)
    for email_norm in groups:
        rows = [dict(r._mapping) for r in
                bind.execute(sa.select(leads).where(leads.c.email_norm == email_norm).order_by(leads.c.id))]
        keep_id, dup_ids = rows[0]["id"], [r["id"] for r in rows[1:]]
        values, story_id = merged(rows)
        # The story's SLA timers move to the kept lead; every other timer of the group goes.
        bind.execute(timers.delete().where(timers.c.lead_id.in_([r["id"] for r in rows if r["id"] != story_id])))
        bind.execute(timers.update().where(timers.c.lead_id == story_id).values(lead_id=keep_id))
        # Messages not yet sent about a duplicate would post a second card: they are given up.
        bind.execute(outbox.update().where(outbox.c.lead_id.in_(dup_ids), outbox.c.status == "pending")
                     .values(status="failed", last_error=f"lead merged into {keep_id}"))
        bind.execute(outbox.update().where(outbox.c.lead_id.in_(dup_ids)).values(lead_id=keep_id))
        bind.execute(audit.update().where(audit.c.lead_id.in_(dup_ids)).values(lead_id=keep_id))
        # external_id is unique too: free the duplicates' ids before the kept lead may take one.
        bind.execute(leads.update().where(leads.c.id.in_(dup_ids)).values(external_id=None))
        bind.execute(leads.delete().where(leads.c.id.in_(dup_ids)))
        bind.execute(leads.update().where(leads.c.id == keep_id).values(**values))
        bind.execute(audit.insert().values(lead_id=keep_id, at=now, actor="migration", action="merged",
                                           detail={"merged_ids": dup_ids, "lifecycle_from": story_id,
                                                   "external_ids": [r["external_id"] for r in rows[1:]
                                                                    if r["external_id"]]}))
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_email_norm')
        batch_op.create_index('ix_leads_email_norm', ['email_norm'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_email_norm')
        batch_op.create_index('ix_leads_email_norm', ['email_norm'], unique=False)
