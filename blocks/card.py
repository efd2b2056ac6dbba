"""The handoff card: one message per MQL, updated in place as the lead moves."""
from __future__ import annotations

from blocks.format import button, clip, duration, escape, local_time, plain, reason_label, who
from blocks.ids import ActionId, BlockId
from blocks.texts import t
from models.clock import BusinessClock
from models.handover import HANDED
from models.tables import Lead

MAX_ATTRIBUTES = 10



def _field(label: str, value: str | None) -> dict:
    return plain(clip(f"{label}: {value or '—'}", 1900))


def _who(lead: Lead, lang: str, header: str) -> tuple[str, str, list[dict]]:
    """The company and person of a card, and its first blocks: the header and the person's fields."""
    company = lead.company or t("card.unknown_company", lang)
    name = lead.name or t("card.unknown_name", lang)
    return company, name, [
        {"type": "header", "text": plain(clip(t(header, lang, company=company), 150))},
        {"type": "section", "fields": [
            _field(t("card.field.person", lang), name),
            _field(t("card.field.title", lang), lead.title),
            _field(t("card.field.email", lang), lead.email),
            _field(t("card.field.score", lang), str(lead.score)),
            _field(t("card.field.source", lang), lead.source),
        ]},
    ]


def routed_line(lead: Lead, team_name: str | None, lang: str) -> dict | None:
    """Which team the lead was routed to and why (docs/routing.md); None without a routing file."""
    if lead.team is None:
        return None
    name = escape(team_name or lead.team)
    why = lead.routed_by or ""
    if why.startswith("account:"):
        return {"type": "mrkdwn", "text": t("card.routed.account", lang, team=name, user=why.removeprefix("account:"))}
    if why.startswith("rule:"):
        return {"type": "mrkdwn", "text": t("card.routed.rule", lang, team=name, rule=why.removeprefix("rule:"))}
    return {"type": "mrkdwn", "text": t("card.routed", lang, team=name)}


def card(lead: Lead, lang: str, clock: BusinessClock, team_name: str | None = None,
         handed_name: str | None = None) -> tuple[str, list[dict]]:
    """The card's fallback text and blocks for the lead as it stands now (`team_name`: its team's, when
    routed; `handed_name`: the team its SQL was handed to). An erased lead's card shows no personal data."""
    if lead.erased_at is not None:
        return erased_card(lead, lang, clock)
    company, name, blocks = _who(lead, lang, "card.header")
    attrs = list((lead.attributes or {}).items())[:MAX_ATTRIBUTES]
    if attrs:
        lines = "\n".join(f"• {clip(str(k), 60)}: {clip(str(v), 200)}" for k, v in attrs)
        blocks.append({"type": "section", "text": plain(clip(
            f"{t('card.attributes', lang)}\n{lines}", 2900))})
    if (routed := routed_line(lead, team_name, lang)) is not None:
        blocks.append({"type": "context", "elements": [routed]})

    if lead.claimed_at is None:
        deadline = local_time(lead.claim_due, clock.tz, lang)
        elements = [{"type": "mrkdwn", "text": t("card.claim_by", lang, deadline=deadline)}]
        if lead.offered_to and lead.offer_until:
            elements.append({"type": "mrkdwn", "text": t(
                "card.offered", lang, user=lead.offered_to, until=local_time(lead.offer_until, clock.tz, lang))})
        blocks.append({"type": "context", "elements": elements})
        blocks.append({"type": "actions", "block_id": BlockId.CARD_ACTIONS, "elements": [
            button(t("card.button.claim", lang), ActionId.CLAIM, lead.id, "primary"),
            button(t("card.button.disqualify", lang), ActionId.DISQUALIFY, lead.id),
        ]})
        fallback = t("card.fallback", lang, company=escape(company), name=escape(name),
                     score=lead.score, deadline=deadline)
        return fallback, blocks

    blocks.append({"type": "context", "elements": status_lines(lead, lang, clock)})
    if lead.handed_to is not None:  # the next team's card carries the lead from here (`handover_card`)
        blocks.append({"type": "context", "elements": [handed_line(lead, lang, clock, handed_name)]})
    else:
        blocks.append({"type": "actions", "block_id": BlockId.OWNER_ACTIONS, "elements": owner_controls(lead, lang)})
    if lead.disqualified_at is not None:
        fallback = t("card.disqualified.fallback", lang, company=escape(company))
    else:
        fallback = t("card.claimed.fallback", lang, company=escape(company), who=who(lead.claimed_by, lang))
    return fallback, blocks


def erased_card(lead: Lead, lang: str, clock: BusinessClock) -> tuple[str, list[dict]]:
    """A card (the first team's or the handed-over one) once its person was erased: the lead's number, that it
    was erased, and its status lines (owner, SLA, outcome, rating); no buttons."""
    blocks = [{"type": "header", "text": plain(t("privacy.card.header", lang, id=lead.id))},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": t("privacy.card.erased", lang)}]}]
    if lead.claimed_at is not None or lead.disqualified_at is not None:
        blocks.append({"type": "context", "elements": status_lines(lead, lang, clock)})
    return t("privacy.card.fallback", lang, id=lead.id), blocks


def status_lines(lead: Lead, lang: str, clock: BusinessClock) -> list[dict]:
    """Where a claimed lead stands: owner and time to claim, contact, SQL, the outcome, its quality; a stage
    recorded in the CRM says so (docs/crm-status.md)."""
    tz = clock.tz
    crm = set((lead.crm_marked or "").split(","))

    def marked(line: str, stage: str) -> str:
        return line + t("card.in_crm", lang) if stage in crm else line

    lines = []
    if lead.disqualified_at is not None:
        lines.append(marked(t("card.disqualified", lang, who=who(lead.claimed_by, lang),
                              reason=reason_label(lead.disqualify_reason, lang)), "disqualified"))
    else:
        minutes = clock.minutes_between(lead.mql_at, lead.claimed_at)
        sla = t("sla.within" if lead.claimed_at <= lead.claim_due else "sla.missed", lang)
        lines.append(marked(t("card.claimed", lang, who=who(lead.claimed_by, lang), duration=duration(minutes, lang),
                              sla=sla), "claimed"))
        if lead.contacted_at is not None:
            lines.append(marked(t("card.contacted", lang, when=local_time(lead.contacted_at, tz, lang),
                                  sla=t("sla.within" if lead.contacted_at <= lead.contact_due else "sla.missed",
                                        lang)), "contacted"))
        if lead.sql_at is not None and lead.won_at is None:
            lines.append(marked(t("card.sql", lang, when=local_time(lead.sql_at, tz, lang)), "sql"))
        if lead.won_at is not None:
            lines.append(marked(t("card.won", lang, when=local_time(lead.won_at, tz, lang),
                                  who=who(lead.owner, lang)), "won"))
        if lead.lost_at is not None:
            lines.append(marked(t("card.lost", lang, when=local_time(lead.lost_at, tz, lang), who=who(lead.owner, lang),
                                  reason=reason_label(lead.lost_reason, lang)), "lost"))
    if lead.quality:
        lines.append(t("card.quality", lang, rating=t(f"quality.{lead.quality}", lang)))
    return [{"type": "mrkdwn", "text": line} for line in lines[:10]]


def handed_line(lead: Lead, lang: str, clock: BusinessClock, team_name: str | None) -> dict:
    """On the first card once its SQL was handed on: to which team, by whom, and who took it there."""
    team = escape(team_name or lead.handed_to or "")
    if lead.handed_claimed_by is not None:
        text = t("card.handed.taken", lang, team=team, user=lead.handed_claimed_by)
    else:
        text = t("card.handed", lang, team=team, user=lead.qualified_by or "-",
                 deadline=local_time(lead.handed_claim_due, clock.tz, lang))
    return {"type": "mrkdwn", "text": text}


def handover_card(lead: Lead, lang: str, clock: BusinessClock, from_team: str | None,
                  to_team: str | None) -> tuple[str, list[dict]]:
    """The card of an SQL handed to the next team: who qualified it and their note, the lead's history so far,
    and the claim button (then, once claimed, the owner's controls)."""
    if lead.erased_at is not None:
        return erased_card(lead, lang, clock)
    tz = clock.tz
    company, name, blocks = _who(lead, lang, "card.handover.header")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t(
        "card.handover.by", lang, user=lead.qualified_by or "-", team=escape(from_team or lead.team or ""),
        to=escape(to_team or lead.handed_to or ""))}]})
    if lead.handed_note:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(
            t("card.handover.note", lang, note=escape(lead.handed_note)), 2900)}})
    history = [t("card.history.mql", lang, when=local_time(lead.mql_at, tz, lang))]
    if lead.claimed_at is not None:
        history.append(t("card.history.claimed", lang, user=lead.claimed_by, when=local_time(lead.claimed_at, tz, lang)))
    if lead.contacted_at is not None:
        history.append(t("card.history.contacted", lang, when=local_time(lead.contacted_at, tz, lang)))
    history.append(t("card.history.sql", lang, when=local_time(lead.sql_at, tz, lang)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(" · ".join(history), 2900)}]})
    deadline = local_time(lead.handed_claim_due, tz, lang)
    if lead.handed_claimed_at is None and not lead.closed:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t(
            "card.claim_by", lang, deadline=deadline)}]})
        blocks.append({"type": "actions", "block_id": BlockId.CARD_ACTIONS, "elements": [
            button(t("card.button.claim", lang), ActionId.CLAIM, f"{lead.id}:{HANDED}", "primary")]})
        fallback = t("card.handover.fallback", lang, company=escape(company), name=escape(name), deadline=deadline)
        return fallback, blocks
    lines = []
    if lead.handed_claimed_at is not None:
        minutes = clock.minutes_between(lead.sql_at, lead.handed_claimed_at)
        sla = t("sla.within" if lead.handed_claimed_at <= lead.handed_claim_due else "sla.missed", lang)
        lines.append(t("card.handover.claimed", lang, user=lead.handed_claimed_by, duration=duration(minutes, lang),
                       sla=sla))
    if lead.won_at is not None:
        lines.append(t("card.won", lang, when=local_time(lead.won_at, tz, lang), who=who(lead.owner, lang)))
    if lead.lost_at is not None:
        lines.append(t("card.lost", lang, when=local_time(lead.lost_at, tz, lang), who=who(lead.owner, lang),
                       reason=reason_label(lead.lost_reason, lang)))
    if lead.disqualified_at is not None:
        lines.append(t("card.disqualified", lang, who=who(lead.owner, lang),
                       reason=reason_label(lead.disqualify_reason, lang)))
    if lines:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line} for line in lines[:10]]})
    blocks.append({"type": "actions", "block_id": BlockId.OWNER_ACTIONS, "elements": owner_controls(lead, lang)})
    return t("card.handover.taken.fallback", lang, company=escape(company), user=lead.owner), blocks


def owner_controls(lead: Lead, lang: str) -> list[dict]:
    """The owner's buttons for where the lead stands (others who click are told why not, privately)."""
    if lead.closed:
        return [button(t("card.button.undo", lang), ActionId.UNDO, lead.id)]
    out = []
    if lead.contacted_at is None:
        out.append(button(t("remind.button.contacted", lang), ActionId.CONTACTED, lead.id, "primary"))
    if lead.sql_at is None:
        out.append(button(t("card.button.sql", lang), ActionId.SQL, lead.id))
    out.append(button(t("card.button.won", lang), ActionId.WON, lead.id))
    out.append(button(t("card.button.lost", lang), ActionId.LOST, lead.id))
    out.append(button(t("card.button.disqualify", lang), ActionId.DISQUALIFY, lead.id))
    if lead.sql_at is not None and lead.handed_to is None:  # a handed SQL is the next team's: not undone here
        out.append(button(t("card.button.undo", lang), ActionId.UNDO, lead.id))
    return out
