"""Personal data (docs/privacy.md): everything Handoff holds about one person, exported or erased.

`export` reads, in one transaction, every lead with the person's email (compared case-insensitively, as
Handoff keeps emails), and for each: every stored column, its history (the audit trail: every change with its
time, actor and source), the Slack messages Handoff posted that show it, and the event deliveries and CRM
writes that carried it. What it returns is JSON-ready (instants as ISO 8601 UTC strings ending in Z, as in
events).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, literal_column, or_, select, update
from sqlalchemy.orm import Session

from models import events
from models.db import insert_ignore
from models.events import iso
from models.outbox import Kind, enqueue_many
from models.tables import (
    AuditEvent,
    CrmSync,
    CrmTask,
    Destination,
    Erasure,
    Event,
    EventDelivery,
    InstallationKey,
    Lead,
    OutboxMessage,
    SlaTimer,
    Suppression,
)

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
        channel = row.result_channel or row.channel  # a DM: its conversation, where Slack keeps it
        out.append({"channel": channel, "ts": row.result_ts, "permalink": _permalink(base, channel, row.result_ts),
                    "kind": row.kind, "sent_at": _json(row.sent_at)})
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


# Erasure ---------------------------------------------------------------------------------------------------------
ERASED = "[erased]"  # what a stored text that held the person's data reads once they are erased
HOW = ("cli", "http", "retention")
KEY_NAME = "suppression"  # the installation's HMAC key of suppressed emails (installation_keys)


@dataclass(frozen=True)
class Erased:
    """What one erasure did: the leads it erased (ids), and whether the email is now suppressed."""

    lead_ids: list[int]
    suppressed: bool = False


def leads_of(session: Session, *, email: str | None = None, external_id: str | None = None) -> list[int]:
    """The ids of the leads held for a person, not erased yet: by email (any case), or by external id."""
    if email is not None:
        where = Lead.email_norm == normalized(email)
    else:
        where = Lead.external_id == external_id
    return list(session.scalars(select(Lead.id).where(where, Lead.erased_at.is_(None)).order_by(Lead.id)))


def erase_person(session: Session, *, email: str | None = None, external_id: str | None = None,
                 suppress_it: bool = False, how: str, now: datetime) -> Erased:
    """Erase the person with this email (any case) or external id, in the caller's transaction; `suppress_it`:
    keep the email's keyed hash (by external id: the email of each lead found). Erasing again erases nothing."""
    if email is not None:
        ids = leads_of(session, email=email)
        emails = [email] if suppress_it else []
    else:
        ids = leads_of(session, external_id=external_id)
        emails = list(session.scalars(select(Lead.email_norm).where(Lead.id.in_(ids)))) if suppress_it else []
    for address in emails:
        suppress(session, address, now)
    return erase(session, ids, how=how, now=now, suppressed=bool(emails))


def erase(session: Session, lead_ids: list[int], *, how: str, now: datetime, suppressed: bool = False) -> Erased:
    """Erase these leads' personal data everywhere in the database, in the caller's transaction (docs/privacy.md):
    the lead rows keep what is not personal (times, source, score, status, team, owners, reasons, ratings) and are
    marked erased; every stored text that held the person's data (audit details, outbox payloads and errors,
    event bodies and delivery errors, CRM rows) no longer does; what was still to go to the endpoints and CRMs
    is cancelled; the Slack messages that showed them are queued to be edited; `lead.erased` goes out; the
    erasure is logged without the email (also one that erased nobody but `suppressed` the email). A lead already
    erased is skipped (erasing twice is harmless)."""
    if how not in HOW:
        raise ValueError(f"how: {how!r}")
    leads = list(session.scalars(select(Lead).where(Lead.id.in_(sorted(set(lead_ids))), Lead.erased_at.is_(None))
                                 .order_by(Lead.id).with_for_update().execution_options(populate_existing=True)))
    ids = [lead.id for lead in leads]
    if ids:
        needles = {lead.id: _needles(lead) for lead in leads}
        _scrub_rows(session, ids, needles)
        _cancel_downstream(session, ids)
        _queue_edits(session, leads, now)
        _emit_erased(session, leads, now)
        for lead in leads:
            _blank(lead, now)
        session.flush()
    if ids or suppressed:
        session.add(Erasure(at=now, how=how, leads=len(ids), lead_ids=ids, suppressed=suppressed))
    return Erased(ids, suppressed)


def _needles(lead: Lead) -> list[str]:
    """The person's strings on this lead, lower-cased, longest first: what no stored text may hold after."""
    values = [lead.email, lead.email_norm, lead.name, lead.company, lead.title, lead.outcome_note, lead.handed_note]
    # an attribute's value is the person's; its name (`job_function`) is marketing's vocabulary, and stays
    values += [v for v in (lead.attributes or {}).values() if isinstance(v, str)]
    found = {v.strip().lower() for v in values if isinstance(v, str) and len(v.strip()) >= 2}
    return sorted(found, key=len, reverse=True)


def scrub(value, needles: list[str]):
    """`value` (JSON: dicts, lists, strings, numbers) with every string that holds one of `needles` (any case)
    replaced by ERASED; dict keys are names, not data, and stay. Returns the same object when nothing changed."""
    if isinstance(value, str):
        low = value.lower()
        return ERASED if any(n in low for n in needles) else value
    if isinstance(value, dict):
        out = {k: scrub(v, needles) for k, v in value.items()}
        return value if all(out[k] is value[k] for k in value) else out
    if isinstance(value, list):
        out = [scrub(v, needles) for v in value]
        return value if all(a is b for a, b in zip(out, value, strict=True)) else out
    return value


def _scrub_rows(session: Session, ids: list[int], needles: dict[int, list[str]]) -> None:
    """Every stored JSON and error text of these leads' rows, without the person's strings: the rows that held
    them are rewritten, a batch of statements per table."""
    for model, columns in ((AuditEvent, ("detail",)), (OutboxMessage, ("payload", "last_error")),
                           (Event, ("body",)), (EventDelivery, ("last_error",)), (CrmTask, ("last_error",))):
        cols = [getattr(model, c) for c in columns]
        changed = []
        for row in session.execute(select(model.id, model.lead_id, *cols).where(_of_leads(model, ids))):
            values = {c: scrub(getattr(row, c), needles[row.lead_id]) for c in columns}
            if any(values[c] is not getattr(row, c) for c in columns):
                changed.append({"id": row.id, **values})
        if changed:
            session.execute(update(model), changed)  # by primary key, as one executemany


def _of_leads(model, ids: list[int]):
    """The condition for these leads' rows of `model`. Event deliveries are found through their events: their own
    lead_id is indexed only behind the endpoint's id (the per-endpoint order), and a table of every delivery ever
    made is read through, not searched, without an index (BENCHMARKS.md)."""
    if model is EventDelivery:
        return EventDelivery.event_row.in_(select(Event.id).where(Event.lead_id.in_(ids)))
    return model.lead_id.in_(ids)


def _cancel_downstream(session: Session, ids: list[int]) -> None:
    """Nothing more goes to the endpoints or the CRMs about these leads, and their CRM rows keep nothing personal;
    no reminder is due for them any more."""
    session.execute(update(EventDelivery).where(_of_leads(EventDelivery, ids), EventDelivery.status == "pending")
                    .values(status="cancelled", lease_until=None))
    session.execute(update(CrmTask).where(CrmTask.lead_id.in_(ids), CrmTask.status == "pending")
                    .values(status="cancelled", next_attempt_at=None, lease_until=None))
    session.execute(update(CrmSync).where(CrmSync.lead_id.in_(ids))
                    .values(sent=None, next_attempt_at=None, lease_until=None, last_error=None))
    session.execute(delete(SlaTimer).where(SlaTimer.lead_id.in_(ids)))


def _queue_edits(session: Session, leads: list[Lead], now: datetime) -> None:
    """Every Slack message that showed the person, queued to be edited: the cards (re-rendered as erased; one still
    queued is posted as erased), each reminder, escalation, DM and marketing post (REDACT), a weekly digest that
    named the lead, and the App Home of whoever owned or was offered the lead."""
    ids = [lead.id for lead in leads]
    # The leads' outbox rows, read by lead alone: with the kind and the status in the query, SQLite (which keeps no
    # statistics) reads the status index through every sent message instead (BENCHMARKS.md)
    rows = session.execute(select(OutboxMessage.id, OutboxMessage.lead_id, OutboxMessage.kind, OutboxMessage.status,
                                  OutboxMessage.result_channel, OutboxMessage.channel, OutboxMessage.result_ts)
                           .where(OutboxMessage.lead_id.in_(ids))).all()
    cards = {str(Kind.CARD_POST), str(Kind.HANDOVER_CARD)}
    own = {str(k) for k in OWN_MESSAGES}
    queued_cards = {row.lead_id for row in rows if row.kind in cards and row.status == "pending"}
    enqueue_many(session, Kind.CARD_UPDATE, [
        {"dedupe_key": f"card:{lead.id}:erased", "lead_id": lead.id} for lead in leads
        if lead.card_ts or lead.handed_card_ts or lead.id in queued_cards], now, count=False)
    # once per person and erasure: a Home is rendered when it is sent, so one shows every lead of this erasure
    homes = sorted({user for lead in leads for user in (lead.claimed_by, lead.handed_claimed_by, lead.offered_to)
                    if user is not None})
    enqueue_many(session, Kind.HOME, [{"dedupe_key": f"home:{user}:erased:{ids[0]}", "channel": user,
                                       "payload": {"user": user}} for user in homes], now, count=False)
    redactions = []
    for row in rows:
        if row.kind not in own or row.status != "sent" or not row.result_ts:
            continue
        channel = row.result_channel or row.channel
        if not channel or channel[0] in "UW":  # sent before Handoff kept a DM's conversation: cannot be edited
            continue
        redactions.append({"dedupe_key": f"redact:{row.id}", "lead_id": row.lead_id, "channel": channel,
                           "payload": {"channel": channel, "ts": row.result_ts, "of": row.kind}})
    redactions += _digests_naming(session, set(ids))
    enqueue_many(session, Kind.REDACT, redactions, now, count=False)


# Written as a literal, as the partial index ix_outbox_digests is: a bound parameter would keep the planners from it
DIGESTS = OutboxMessage.kind == literal_column(f"'{Kind.DIGEST}'")


def _digests_naming(session: Session, ids: set[int]) -> list[dict]:
    """A REDACT row for each sent weekly digest that listed one of these leads as overdue (by the ids it kept,
    outbox.result_detail): it is rendered again as it was, the erased lead by its number only. One per digest
    and lead, so a second person erased from the same digest edits it again."""
    out = []
    for row in session.execute(select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.result_channel,
                                      OutboxMessage.result_ts, OutboxMessage.payload, OutboxMessage.result_detail)
                               .where(DIGESTS)):  # only that: with `status`, SQLite would read every sent row
        shown = row.result_detail
        if not shown or not row.result_ts:  # not sent (yet, or ever), or sent before digests kept what they named
            continue
        named = {lead_id for part in (shown.get("overdue") or {}).values() for lead_id, _owner in part["leads"]}
        channel = row.result_channel or row.channel
        for lead_id in sorted(named & ids):
            out.append({"dedupe_key": f"redact:{row.id}:{lead_id}", "lead_id": lead_id, "channel": channel,
                        "payload": {"channel": channel, "ts": row.result_ts, "of": str(Kind.DIGEST),
                                    "label": row.payload.get("label"), "as_of": row.payload.get("as_of"),
                                    "shown": shown}})
    return out


def _emit_erased(session: Session, leads: list[Lead], now: datetime) -> None:
    """`lead.erased` to every endpoint, carrying only the lead's id and external id (docs/events.md)."""
    events.emit_erased(session, [(lead.id, lead.external_id) for lead in leads], now)


def _blank(lead: Lead, now: datetime) -> None:
    """The lead row without the person: what is kept is what KPIs, digests and retros read."""
    lead.email = ""
    lead.email_norm = f"erased:{lead.id}"  # unique, as every lead's is; never an address
    lead.name = lead.company = lead.title = None
    lead.attributes = {}
    lead.outcome_note = lead.handed_note = None
    lead.external_id = None  # the marketing tool may send the person again: a new lead, not this one
    lead.erased_at = now


# Retention ------------------------------------------------------------------------------------------------------
RETENTION_BATCH = 500  # stale leads erased per transaction by the retention job

# A lead's last activity (docs/privacy.md): the latest of its creation, a webhook update, a claim, contact or
# outcome. Every change sets updated_at, so a stale lead is one whose updated_at is old, found through the partial
# index ix_leads_retention; the other times are checked too, for those given from outside (a CRM's `at`, an import).
ACTIVITY = ("created_at", "updated_at", "claimed_at", "contacted_at", "sql_at", "won_at", "lost_at",
            "disqualified_at", "handed_claimed_at")


def stale(session: Session, cutoff: datetime, limit: int) -> list[int]:
    """Up to `limit` ids of leads not erased whose last activity is before `cutoff`, oldest first."""
    conds = [or_(getattr(Lead, c).is_(None), getattr(Lead, c) < cutoff) for c in ACTIVITY if c != "updated_at"]
    return list(session.scalars(select(Lead.id).where(Lead.erased_at.is_(None), Lead.updated_at < cutoff, *conds)
                                .order_by(Lead.updated_at, Lead.id).limit(limit)))


def retention_batch(session: Session, now: datetime, days: int, limit: int = RETENTION_BATCH) -> list[int]:
    """Erase one batch of stale leads (logged as `retention`); their ids (none: nothing is stale)."""
    ids = stale(session, now - timedelta(days=days), limit)
    return erase(session, ids, how="retention", now=now).lead_ids if ids else []


# Suppression ------------------------------------------------------------------------------------------------------
def installation_key(session: Session, now: datetime) -> bytes:
    """The installation's random key for suppressed emails' digests, made by the first process that needs it."""
    value = session.scalar(select(InstallationKey.value).where(InstallationKey.name == KEY_NAME))
    if value is None:
        insert_ignore(session, InstallationKey, {"name": KEY_NAME, "value": secrets.token_hex(32), "created_at": now})
        value = session.scalar(select(InstallationKey.value).where(InstallationKey.name == KEY_NAME))
    return bytes.fromhex(value)


def digest_of(key: bytes, email: str) -> str:
    """HMAC-SHA256 of the lower-cased email with the installation's key (hex)."""
    return hmac.new(key, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def suppress(session: Session, email: str, now: datetime) -> None:
    """Keep this email's digest so that a later webhook for it stores nothing (once, however often asked)."""
    insert_ignore(session, Suppression, {"digest": digest_of(installation_key(session, now), email), "created_at": now})


def suppressed(session: Session, emails: list[str]) -> set[str]:
    """Which of these emails are suppressed, as given (every case form of a suppressed one). Reads nothing more
    while no email ever was."""
    if not emails or session.scalar(select(Suppression.digest).limit(1)) is None:
        return set()
    key = bytes.fromhex(session.scalar(select(InstallationKey.value).where(InstallationKey.name == KEY_NAME)))
    digests: dict[str, set[str]] = {}
    for e in emails:
        if isinstance(e, str):
            digests.setdefault(digest_of(key, e), set()).add(e)
    wanted, held = list(digests), set()
    for at in range(0, len(wanted), 500):  # an import's many emails, a bounded statement at a time
        held.update(session.scalars(select(Suppression.digest).where(Suppression.digest.in_(wanted[at:at + 500]))))
    return {e for d in held for e in digests[d]}


def erasures(session: Session, limit: int = 100) -> list[Erasure]:
    """The latest erasures, newest first (`privacy log`)."""
    return list(session.scalars(select(Erasure).order_by(Erasure.id.desc()).limit(limit)))

