"""What App Home shows: a rep's open leads; for managers, the team's unclaimed and overdue leads."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models.outcomes import quality_by_source
from models.tables import Lead

LIMIT = 15       # a rep's own leads (3 blocks each)
TEAM_LIMIT = 10  # each manager section (2 blocks each); a Home tab holds 100 blocks


@dataclass
class Section:
    leads: list[Lead] = field(default_factory=list)
    total: int = 0


@dataclass
class HomeData:
    mine: Section
    unclaimed: Section | None = None
    overdue: Section | None = None
    quality: dict | None = None


def _open():
    return and_(Lead.mql_at.is_not(None), Lead.lost_at.is_(None), Lead.won_at.is_(None),
                Lead.disqualified_at.is_(None))


def _section(session: Session, cond, order, limit: int) -> Section:
    leads = list(session.scalars(select(Lead).where(cond).order_by(*order).limit(limit)))
    total = session.scalar(select(func.count()).select_from(Lead).where(cond))
    session.expunge_all()
    return Section(leads, int(total or 0))


def load(session: Session, user: str, is_manager: bool, now: datetime, limit: int = LIMIT,
         teams: list[str] | None = None, routed: bool = False) -> HomeData:
    """`teams`: the teams a manager sees the queues of (models/teams.py `managed_by`); None: every lead.
    `routed` (a routing file): the SQLs handed to those teams and not taken yet are in their unclaimed queue."""
    # the owner: the receiving team's claimant after a handover, else whoever claimed it (each side indexed)
    mine_cond = and_(_open(), or_(and_(Lead.claimed_by == user, Lead.handed_claimed_by.is_(None)),
                                  Lead.handed_claimed_by == user,
                                  and_(Lead.claimed_at.is_(None), Lead.offered_to == user)))
    data = HomeData(mine=_section(session, mine_cond, (Lead.contact_due, Lead.id), limit))
    if is_manager:
        ids = [t for t in teams if t is not None] if teams is not None else None
        theirs = _open() if ids is None else and_(_open(), Lead.team.in_(ids))
        waiting = and_(theirs, Lead.claimed_at.is_(None))
        if routed:  # handed to one of their teams and not taken there yet
            handed = and_(_open(), Lead.handed_to.is_not(None) if ids is None else Lead.handed_to.in_(ids),
                          Lead.handed_claimed_at.is_(None))
            waiting = or_(waiting, handed)
        data.unclaimed = _section(session, waiting, (Lead.claim_due, Lead.id), TEAM_LIMIT)
        data.overdue = _section(session, and_(theirs, Lead.claimed_at.is_not(None), Lead.contacted_at.is_(None),
                                              Lead.contact_due <= now), (Lead.contact_due, Lead.id), TEAM_LIMIT)
        data.quality = quality_by_source(session, now - timedelta(days=90))
    return data
