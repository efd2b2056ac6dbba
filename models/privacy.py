"""Personal data (docs/privacy.md): everything Handoff holds about one person, as one JSON document.

`export` reads, in one transaction, every lead with the person's email (compared case-insensitively, as
Handoff keeps emails), and for each: every stored column, its history (the audit trail: every change with its
time, actor and source), the Slack messages Handoff posted that show it, and the event deliveries and CRM
writes that carried it. What it returns is JSON-ready (instants as ISO 8601 UTC strings ending in Z, as in
events).
"""
from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.events import iso
from models.outbox import Kind
from models.tables import AuditEvent, CrmSync, CrmTask, Destination, Event, EventDelivery, Lead, OutboxMessage

# What an address looks like for `privacy export` and `privacy erase`: one @, something on both sides, no spaces.
# Deliberately loose (what marketing tools send is stored as they send it); it refuses what is plainly not one.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# Besides its cards (kept on the lead), the outbox kinds that post a message of their own about a lead:
# reminders, escalations and DMs about it, and its feedback post to marketing. (A private notice is seen once
# by one person and kept nowhere: Slack gives no way to show or change it again.)
OWN_MESSAGES = (Kind.REMINDER, Kind.FEEDBACK)


class NotAnEmail(ValueError):
    """The argument is not an email address."""


def normalized(email: str) -> str:
    """The email as Handoff keeps it for matching (models/leads.py stores `email_norm` so); NotAnEmail else."""
    value = (email or "").strip()
    if not EMAIL.fullmatch(value):
        raise NotAnEmail(value)
    return value.lower()


def _json(value):
    """Instants as events carry them (models/events.py `iso`), other values as they are."""
    if isinstance(value, datetime):
        return iso(value)
    return value.isoformat() if isinstance(value, date) else value


def _columns(row) -> dict:
    return {c.key: _json(getattr(row, c.key)) for c in row.__table__.columns}


def export(session: Session, email: str, now: datetime) -> dict:
    """Everything held about the person with this email (docs/privacy.md#export)."""
    norm = normalized(email)
    leads = list(session.scalars(select(Lead).where(Lead.email_norm == norm).order_by(Lead.id)))
    return {"email": email.strip(), "exported_at": iso(now), "leads": [_lead(session, lead) for lead in leads]}


def _lead(session: Session, lead: Lead) -> dict:
    history = [{"at": _json(a.at), "actor": a.actor, "action": a.action, "detail": a.detail}
               for a in session.scalars(select(AuditEvent).where(AuditEvent.lead_id == lead.id)
                                        .order_by(AuditEvent.at, AuditEvent.id))]
    return {"fields": _columns(lead), "history": history,
            "quality": {"rating": lead.quality, "by": lead.quality_by, "at": _json(lead.quality_at)},
            "slack_messages": _messages(session, lead), "event_deliveries": _deliveries(session, lead.id),
            "crm_writes": _crm(session, lead.id)}


def _messages(session: Session, lead: Lead) -> list[dict]:
    """The messages Handoff posted about the lead: its cards (where they live now) and each sent outbox row that
    made a message of its own (a reminder, a DM, the feedback post), with its permalink when one is known."""
    base = _workspace(lead.card_url)
    out = []
    for channel, ts, kind in ((lead.card_channel, lead.card_ts, "card"),
                              (lead.handed_card_channel, lead.handed_card_ts, "handover_card")):
        if channel and ts:
            out.append({"channel": channel, "ts": ts, "permalink": _permalink(base, channel, ts), "kind": kind})
    rows = session.scalars(select(OutboxMessage).where(
        OutboxMessage.lead_id == lead.id, OutboxMessage.kind.in_([str(k) for k in OWN_MESSAGES]),
        OutboxMessage.status == "sent", OutboxMessage.result_ts.is_not(None)).order_by(OutboxMessage.id))
    for row in rows:
        out.append({"channel": row.channel, "ts": row.result_ts,
                    "permalink": _permalink(base, row.channel, row.result_ts), "kind": row.kind,
                    "sent_at": _json(row.sent_at)})
    return out


def _workspace(card_url: str | None) -> str | None:
    """https://team.slack.com, from a permalink Slack gave for the card."""
    found = re.match(r"(https://[^/]+)/archives/", card_url or "")
    return found.group(1) if found else None


def _permalink(base: str | None, channel: str | None, ts: str | None) -> str | None:
    if not (base and channel and ts) or not channel.startswith(("C", "G", "D")):
        return None  # a DM queued to a user id: Slack's channel for it is not the user id
    return f"{base}/archives/{channel}/p{ts.replace('.', '')}"


def _deliveries(session: Session, lead_id: int) -> list[dict]:
    rows = session.execute(
        select(Event.event_id, Event.type, Event.occurred_at, Event.body, Destination.url, EventDelivery.status,
               EventDelivery.attempts, EventDelivery.delivered_at, EventDelivery.last_status)
        .join(EventDelivery, EventDelivery.event_row == Event.id)
        .join(Destination, Destination.id == EventDelivery.destination_id)
        .where(Event.lead_id == lead_id).order_by(Event.id, EventDelivery.id))
    return [{"event_id": r.event_id, "type": r.type, "occurred_at": _json(r.occurred_at), "url": r.url,
             "status": r.status, "attempts": r.attempts, "delivered_at": _json(r.delivered_at),
             "last_status": r.last_status, "body": r.body} for r in rows]


def _crm(session: Session, lead_id: int) -> list[dict]:
    out = []
    for sync, kind in session.execute(select(CrmSync, Destination.kind)
                                      .join(Destination, Destination.id == CrmSync.destination_id)
                                      .where(CrmSync.lead_id == lead_id).order_by(CrmSync.destination_id)):
        out.append({"crm": kind, "record_id": sync.record_id, "state": sync.state, "changes": sync.want,
                    "written": sync.written, "sent": sync.sent, "updated_at": _json(sync.updated_at)})
    for task, kind, event_id in session.execute(
            select(CrmTask, Destination.kind, Event.event_id).join(Destination, Destination.id == CrmTask.destination_id)
            .join(Event, Event.id == CrmTask.event_row).where(CrmTask.lead_id == lead_id).order_by(CrmTask.id)):
        out.append({"crm": kind, "task_for_event": event_id, "record_id": task.record_id, "status": task.status,
                    "written_at": _json(task.written_at)})
    return out
