"""SQLAlchemy 2.0 typed models. Instants are stored as naive UTC and read back aware."""
from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


UNCLAIMED = "claimed_at IS NULL AND mql_at IS NOT NULL"
CLAIMED = "claimed_at IS NOT NULL"


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        # MQLs nobody has claimed, by deadline, with what "overdue now" also checks: that count
        # reads this index alone, not the table.
        Index("ix_leads_unclaimed_due", "claim_due", "mql_at", "lost_at", "disqualified_at",
              sqlite_where=text(UNCLAIMED), postgresql_where=text(UNCLAIMED)),
        # Claimed leads by claim time ("claimed only after the as-of instant"). Partial, so that
        # "claimed_at IS NULL" is never tempted to read it instead of the index above.
        Index("ix_leads_claimed_at", "claimed_at", sqlite_where=text(CLAIMED), postgresql_where=text(CLAIMED)),
        # The daily retention job (docs/privacy.md): leads not erased, by their last change, so that finding the
        # stale ones reads those and nothing else; an erased lead leaves the index.
        Index("ix_leads_retention", "updated_at", sqlite_where=text("erased_at IS NULL"),
              postgresql_where=text("erased_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    # One lead per person: the database refuses a second lead with the same email (docs/identity.md).
    email_norm: Mapped[str] = mapped_column(String(320), index=True, unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(100), default="other")
    score: Mapped[int] = mapped_column(Integer)
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Lifecycle (docs/states.md)
    mql_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claim_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(32), index=True)
    contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sql_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    won_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lost_reason: Mapped[str | None] = mapped_column(String(100))
    outcome_note: Mapped[str | None] = mapped_column(Text)  # the rep's note with a lost or not-a-fit outcome
    disqualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    disqualify_reason: Mapped[str | None] = mapped_column(String(100))
    # "Was this MQL sales-ready?" asked of the owner after an outcome: good | bad
    quality: Mapped[str | None] = mapped_column(String(8))
    quality_by: Mapped[str | None] = mapped_column(String(32))
    quality_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Routing (docs/routing.md): the team the MQL was routed to (None without a routing file) and why:
    # "rule:N" or "account:U…" (the rep who owns the company's account)
    team: Mapped[str | None] = mapped_column(String(40), index=True)
    routed_by: Mapped[str | None] = mapped_column(String(60))
    # The second handoff (docs/routing.md): who marked it SQL, and, in a team with `next`, the team it was handed
    # to with the qualifier's note, that team's claim deadline (from sql_at), claim and card. The first claim
    # (claimed_at, claimed_by) stays as it was; the owner is the second claimant once there is one (`owner`).
    qualified_by: Mapped[str | None] = mapped_column(String(32))
    handed_to: Mapped[str | None] = mapped_column(String(40), index=True)
    handed_note: Mapped[str | None] = mapped_column(Text)
    handed_claim_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handed_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handed_claimed_by: Mapped[str | None] = mapped_column(String(32), index=True)
    handed_card_channel: Mapped[str | None] = mapped_column(String(32))
    handed_card_ts: Mapped[str | None] = mapped_column(String(32))
    # The stages recorded from the CRM, not in Slack (docs/crm-status.md): "claimed,sql"; the card says so
    crm_marked: Mapped[str | None] = mapped_column(String(80))
    # Round-robin: the rep the lead is offered to first, and until when
    offered_to: Mapped[str | None] = mapped_column(String(32))
    offer_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where its card lives in Slack
    card_channel: Mapped[str | None] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    card_url: Mapped[str | None] = mapped_column(String(300))  # its permalink, for events and the CRM
    # Personal data (docs/privacy.md): when the person was erased. The row stays, without anything personal, so
    # past KPIs read the same; its buttons answer that it was erased.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def status(self) -> str:
        return "mql" if self.mql_at is not None else "new"

    @hybrid_property
    def owner(self) -> str | None:
        """Who owns the lead now: the receiving team's claimant after a handover, else the one who claimed it."""
        return self.handed_claimed_by or self.claimed_by

    @owner.inplace.expression
    @classmethod
    def _owner_expression(cls):
        return func.coalesce(cls.handed_claimed_by, cls.claimed_by)

    @property
    def closed(self) -> bool:
        return self.lost_at is not None or self.disqualified_at is not None or self.won_at is not None


class AuditEvent(Base):
    """Append-only: who did what to which lead, and when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class OutboxMessage(Base):
    """One thing to tell Slack, committed with the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # The weekly digests, a row a week among every message ever sent: what an erasure reads to find the digests
        # that named the person (docs/privacy.md). Partial, so it costs the other rows nothing.
        Index("ix_outbox_digests", "id", sqlite_where=text("kind = 'digest'"), postgresql_where=text("kind = 'digest'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result_ts: Mapped[str | None] = mapped_column(String(32))
    # The conversation Slack put the message in: a DM queued to a user id (U…) lives in a D… channel, which is
    # what editing it needs (an erasure's edits, docs/privacy.md)
    result_channel: Mapped[str | None] = mapped_column(String(32))
    # What a sent message showed that an erasure may have to take back, without anything personal: the weekly
    # digest's overdue leads by id and owner (docs/privacy.md)
    result_detail: Mapped[dict | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(Text)


class ProcessedRequest(Base):
    """Slack requests already handled, so a retried delivery takes effect once."""

    __tablename__ = "processed_requests"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Click(Base):
    """A button click on a card, for the click queue (handlers/clicks.py): on PostgreSQL written down before
    Slack is answered and applied soon after, on SQLite written down and applied together just after the
    answer. The unique request key makes a retried delivery of the click a no-op; an applied click is kept a
    day (as ProcessedRequest is) so a late retry still finds it."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_pending", "id", postgresql_where=text("done_at IS NULL"),
              sqlite_where=text("done_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_key: Mapped[str] = mapped_column(String(64), unique=True)
    action_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(32))
    # What applying it and answering the clicker need (the action, the channel, the container), never the
    # message the button sat in: that carries the lead's personal data.
    body: Mapped[dict] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))  # the log lines of its work carry it
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class SlaTimer(Base):
    """The next thing the SLA sweep must do for one lead and one ladder.

    Only open ladders have a row; `due_at` is indexed, so a sweep reads what is
    due and nothing else, however many leads there are.
    """

    __tablename__ = "sla_timers"
    __table_args__ = (UniqueConstraint("lead_id", "kind", name="uq_sla_timers_lead_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    kind: Mapped[str] = mapped_column(String(16))  # claim | contact | outcome | offer
    step: Mapped[int] = mapped_column(Integer, default=0)  # index of the next step of the ladder
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    snoozes: Mapped[int] = mapped_column(Integer, default=0)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutOfOffice(Base):
    """A rep away through `until` (a local date, inclusive): round-robin skips them."""

    __tablename__ = "out_of_office"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    until: Mapped[date] = mapped_column(Date)
    set_by: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AssignmentState(Base):
    """Where the round-robin rotation stands, so it survives restarts."""

    __tablename__ = "assignment_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # "round-robin", or "round-robin:TEAM"
    last_user: Mapped[str | None] = mapped_column(String(32))


class KpiTarget(Base):
    """A manager's target for one KPI in one month (`/kpi target mqls 120 2026-12`)."""

    __tablename__ = "kpi_targets"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # 2026-12
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    set_by: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ActionItem(Base):
    """An action item agreed in a monthly retro; the next retro lists it for review."""

    __tablename__ = "action_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    retro_month: Mapped[str] = mapped_column(String(7), index=True)  # the month the retro was about
    text: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Destination(Base):
    """Somewhere events go besides Slack: each URL of EVENT_WEBHOOK_URLS (kind `webhook`).

    Written from the settings when a process starts (models/events.py: `configure`); a URL taken out of the
    settings stays here, inactive, so its past deliveries keep their history.
    """

    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("kind", "url", name="uq_destinations_kind_url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2000))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """One change of a lead (docs/events.md), written in the transaction that made the change.

    `body` is exactly what receivers get, the lead as it was right after the change; `event_id` is the
    `webhook-id` of every delivery of it, at every endpoint and on every retry.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    body: Mapped[dict] = mapped_column(JSON)


class EventDelivery(Base):
    """One event on its way to one endpoint: retried on its own schedule, in order per lead."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        Index("ix_event_deliveries_due", "destination_id", "status", "next_attempt_at"),
        # "is an earlier event of this lead still pending at this endpoint?" (the per-lead order)
        Index("ix_event_deliveries_lead", "destination_id", "lead_id", "status", "id"),
        Index("ix_event_deliveries_status", "status"),  # /healthz counts the few pending and failed ones
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_row: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id"))
    lead_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the endpoint's last HTTP status, if it answered
    last_error: Mapped[str | None] = mapped_column(Text)


class CrmSync(Base):
    """One lead's place in a CRM's write-back queue (HubSpot: docs/hubspot.md).

    Not a queue of changes but of leads: each change bumps `want`; a write sends the lead's state as it is
    then and records the `want` it saw in `written`. So writes are coalesced (the latest state only), and an
    older state can never land after a newer one. `next_attempt_at` is NULL while nothing is to be done.
    """

    __tablename__ = "crm_sync"
    __table_args__ = (Index("ix_crm_sync_due", "destination_id", "state", "next_attempt_at"),)

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id"), primary_key=True)
    want: Mapped[int] = mapped_column(Integer, default=1)  # changes so far
    written: Mapped[int] = mapped_column(Integer, default=0)  # the change whose state was last written
    state: Mapped[str] = mapped_column(String(16), default="lookup")  # lookup | ready | not_found
    record_id: Mapped[str | None] = mapped_column(String(64))  # the CRM's id of the record, once found
    remote_stage: Mapped[str | None] = mapped_column(String(40))  # the lifecycle stage the CRM holds, as last seen
    sent: Mapped[dict | None] = mapped_column(JSON)  # the properties last written (what the CRM echoes back)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed attempts since the last success
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The record was gone when written (deleted, or an id the CRM does not know) and has been looked up once
    # since: gone again, the lead is skipped until its next change (Salesforce: docs/salesforce.md).
    looked_again: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CrmTask(Base):
    """One outcome on its way to a CRM's activity history (Salesforce: a completed Task, docs/salesforce.md).

    Written with the outcome's event, in its transaction; the Task is upserted by the event's id, so a retried
    call never makes a second one. It waits while its lead's record is not found (`crm_sync`), and goes once
    it is. `next_attempt_at` is NULL once settled (written, or refused with its reason).
    """

    __tablename__ = "crm_tasks"
    __table_args__ = (Index("ix_crm_tasks_due", "destination_id", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    event_row: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | written | refused
    record_id: Mapped[str | None] = mapped_column(String(64))  # the Task's id, once written
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    written_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class Erasure(Base):
    """One erasure (docs/privacy.md): when, how it was asked for (cli, http, retention) and which leads it
    erased. Never the email: this log proves what was done without keeping what was removed."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    how: Mapped[str] = mapped_column(String(16))  # cli | http | retention
    leads: Mapped[int] = mapped_column(Integer)
    lead_ids: Mapped[list] = mapped_column(JSON, default=list)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)


class Suppression(Base):
    """An email that must never be stored again, kept as a keyed hash (HMAC-SHA256 of the lower-cased email
    with the installation's key, `InstallationKey`), never as the email."""

    __tablename__ = "suppressions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstallationKey(Base):
    """Random keys made once per installation and kept in the database, by name (`suppression`: the HMAC key of
    suppressed emails), so that every process of the installation computes the same digests."""

    __tablename__ = "installation_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Indexes only a migration makes: their expression is written per database (migration 0010's index of each
# claimed lead's email domain), so the models cannot declare them; comparing the models with the migrations
# leaves them out, and a migration generated from the models never drops them.
MIGRATION_ONLY_INDEXES = frozenset({"ix_leads_email_domain"})


def declared(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's `include_object`: everything but MIGRATION_ONLY_INDEXES."""
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)
