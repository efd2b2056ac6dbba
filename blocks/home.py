"""The App Home tab: my open leads with deadlines and controls; for managers, the team's queue."""
from __future__ import annotations

from datetime import datetime

from blocks.card import owner_controls
from blocks.format import button, clip, escape, local_time, plain
from blocks.ids import ActionId, BlockId
from blocks.routing import rule_line, team_line
from blocks.texts import t
from models.clock import BusinessClock
from models.home import HomeData, Section
from models.routing import Routing
from models.tables import Lead


def _lead_line(lead: Lead, lang: str) -> str:
    company = escape(clip(lead.company or t("card.unknown_company", lang), 100))
    name = escape(clip(lead.name or t("card.unknown_name", lang), 100))
    return t("home.lead", lang, company=company, name=name, score=lead.score, source=escape(lead.source))


def _status(lead: Lead, now: datetime, lang: str, clock: BusinessClock) -> str:
    tz = clock.tz
    if lead.claimed_at is None:
        key = "home.status.unclaimed_overdue" if lead.claim_due <= now else "home.status.unclaimed"
        return t(key, lang, deadline=local_time(lead.claim_due, tz, lang), user=lead.offered_to or "")
    if lead.contacted_at is None:
        key = "home.status.contact_overdue" if lead.contact_due <= now else "home.status.contact"
        return t(key, lang, deadline=local_time(lead.contact_due, tz, lang), user=lead.claimed_by)
    if lead.sql_at is None:
        return t("home.status.outcome", lang, since=local_time(lead.contacted_at, tz, lang), user=lead.claimed_by)
    return t("home.status.sql", lang, since=local_time(lead.sql_at, tz, lang), user=lead.claimed_by)


def _lead_blocks(lead: Lead, now: datetime, lang: str, clock: BusinessClock, controls: bool) -> list[dict]:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _lead_line(lead, lang)}},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": _status(lead, now, lang, clock)}]}]
    if controls:
        if lead.claimed_at is None:
            elements = [button(t("card.button.claim", lang), ActionId.CLAIM, lead.id, "primary")]
        else:
            elements = owner_controls(lead, lang)
        blocks.append({"type": "actions", "block_id": f"{BlockId.OWNER_ACTIONS}:{lead.id}", "elements": elements})
    return blocks


def _section(title: str, empty: str, section: Section, now, lang, clock, controls: bool) -> list[dict]:
    blocks: list[dict] = [{"type": "header", "text": plain(clip(title, 150))}]
    if not section.leads:
        return blocks + [{"type": "context", "elements": [{"type": "mrkdwn", "text": empty}]}]
    for lead in section.leads:
        blocks += _lead_blocks(lead, now, lang, clock, controls)
    if section.total > len(section.leads):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t(
            "home.more", lang, n=section.total - len(section.leads))}]})
    return blocks


def view(data: HomeData, now: datetime, lang: str, clock: BusinessClock, routing: Routing | None = None) -> dict:
    """The Home tab; `routing`: the teams and rules, shown to managers when there is a routing file."""
    blocks = _section(t("home.mine", lang, n=data.mine.total), t("home.mine.empty", lang), data.mine, now, lang,
                      clock, controls=True)
    if data.unclaimed is not None:
        blocks.append({"type": "divider"})
        blocks += _section(t("home.unclaimed", lang, n=data.unclaimed.total), t("home.unclaimed.empty", lang),
                           data.unclaimed, now, lang, clock, controls=False)
    if data.overdue is not None:
        blocks.append({"type": "divider"})
        blocks += _section(t("home.overdue", lang, n=data.overdue.total), t("home.overdue.empty", lang),
                           data.overdue, now, lang, clock, controls=False)
    if data.quality is not None:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": plain(t("home.quality", lang))})
        lines = [t("home.quality.line", lang, source=escape(src), **q) for src, q in data.quality.items()]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(
            "\n".join(lines) or t("home.quality.empty", lang), 2900)}})
    if routing is not None:
        blocks.append({"type": "divider"})
        blocks.append({"type": "header", "text": plain(t("home.routing", lang))})
        teams = "\n".join(f"• {escape(team_line(team, lang))}" for team in routing.teams.values())
        rules = "\n".join(f"• {escape(rule_line(rule, routing, lang))}" for rule in routing.rules)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(teams, 2900)}})
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(
            f"*{t('home.routing.rules', lang)}*\n{rules}", 2900)}})
    return {"type": "home", "blocks": blocks[:100]}
