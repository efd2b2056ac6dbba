"""The weekly digest, computed as of Monday 09:00 when it fell due (a retry shows the same numbers)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from blocks import digest as digest_blocks
from models import reports
from models.kpi import compute_with_previous, parse_period
from models.outbox import Kind
from models.tables import Lead
from models.teams import Teams
from outbox.deliveries.base import Context, Delivery, Message, Outcome, PeriodPayload


def deliver(ctx: Context, msg: Message[PeriodPayload]) -> Outcome:
    p = msg.payload
    with ctx.db.begin() as s:
        overdue = reports.overdue_now(s, p.as_of)
        lagging = reports.without_outcome(s, p.as_of, ctx.clock, ctx.settings.OUTCOME_REMINDER_DAYS)
        text, blocks = render(ctx, s, p, overdue, lagging)
    resp = ctx.post(msg.channel, text, blocks)
    # kept with the row: the leads it names, by id and owner only, so that an erasure can edit it (redact.py)
    shown = {name: {"total": part["total"], "leads": [[lead_id, owner] for lead_id, _c, owner, _d in part["leads"]]}
             for name, part in overdue.items()}
    return Outcome("sent", ts=resp.get("ts"), channel=resp.get("channel"), detail={"overdue": shown, "lagging": lagging})


def render(ctx: Context, s: Session, p: PeriodPayload, overdue: dict, lagging: dict[str, int]) -> tuple[str, list[dict]]:
    """The digest of `p`'s week as of its instant, with these overdue leads and reps without outcomes."""
    week = parse_period("week", p.label, p.as_of, ctx.clock.tz)
    report, previous = compute_with_previous(s, week, p.as_of, ctx.clock,
                                             **Teams.from_settings(ctx.settings).kpi_scope(None))
    return digest_blocks.digest(report, previous, overdue, lagging, ctx.lang)


def rerender(ctx: Context, p: PeriodPayload, shown: dict) -> tuple[str, list[dict]]:
    """A sent digest again, as it was (its KPIs as of its instant, the overdue leads it named), each lead's company
    read now: an erased lead's line keeps its number only (docs/privacy.md)."""
    ids = [lead_id for part in shown["overdue"].values() for lead_id, _owner in part["leads"]]
    with ctx.db.begin() as s:
        companies = dict(s.execute(select(Lead.id, Lead.company).where(Lead.id.in_(ids))).all()) if ids else {}
        overdue = {name: {"total": part["total"], "leads": [(lead_id, companies.get(lead_id), owner, None)
                                                             for lead_id, owner in part["leads"]]}
                   for name, part in shown["overdue"].items()}
        return render(ctx, s, p, overdue, shown.get("lagging") or {})


DELIVERY = Delivery(kind=Kind.DIGEST, payload=PeriodPayload, deliver=deliver, lane="channel")
