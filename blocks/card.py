"""The handoff card: one message per MQL, updated in place as the lead moves."""
from __future__ import annotations

from blocks.format import clip, plain, duration, escape, local_time, reason_label
from blocks.ids import ActionId, BlockId
from blocks.texts import t
from models.clock import BusinessClock
from models.tables import Lead

MAX_ATTRIBUTES = 10



def _field(label: str, value: str | None) -> dict:
    return plain(clip(f"{label}: {value or '—'}", 1900))


def card(lead: Lead, lang: str, clock: BusinessClock) -> tuple[str, list[dict]]:
    """The card's fallback text and blocks for the lead as it stands now."""
    company = lead.company or t("card.unknown_company", lang)
    name = lead.name or t("card.unknown_name", lang)
    blocks: list[dict] = [
        {"type": "header", "text": plain(clip(t("card.header", lang, company=company), 150))},
        {"type": "section", "fields": [
            _field(t("card.field.person", lang), name),
            _field(t("card.field.title", lang), lead.title),
            _field(t("card.field.email", lang), lead.email),
            _field(t("card.field.score", lang), str(lead.score)),
            _field(t("card.field.source", lang), lead.source),
        ]},
    ]
    attrs = list((lead.attributes or {}).items())[:MAX_ATTRIBUTES]
    if attrs:
        lines = "\n".join(f"• {clip(str(k), 60)}: {clip(str(v), 200)}" for k, v in attrs)
        blocks.append({"type": "section", "text": plain(clip(
            f"{t('card.attributes', lang)}\n{lines}", 2900))})

    if lead.disqualified_at is not None:
        status = t("card.disqualified", lang, user=lead.claimed_by,
                   reason=reason_label(lead.disqualify_reason, lang))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": status}]})
        fallback = t("card.disqualified.fallback", lang, company=escape(company))
    elif lead.claimed_at is not None:
        minutes = clock.minutes_between(lead.mql_at, lead.claimed_at)
        sla = t("sla.within" if lead.claimed_at <= lead.claim_due else "sla.missed", lang)
        status = t("card.claimed", lang, user=lead.claimed_by, duration=duration(minutes, lang), sla=sla)
        elements = [{"type": "mrkdwn", "text": status}]
        if lead.contacted_at is not None:
            elements.append({"type": "mrkdwn", "text": t(
                "card.contacted", lang, when=local_time(lead.contacted_at, clock.tz, lang),
                sla=t("sla.within" if lead.contacted_at <= lead.contact_due else "sla.missed", lang))})
        blocks.append({"type": "context", "elements": elements})
        fallback = t("card.claimed.fallback", lang, company=escape(company), user=lead.claimed_by)
    else:
        deadline = local_time(lead.claim_due, clock.tz, lang)
        elements = [{"type": "mrkdwn", "text": t("card.claim_by", lang, deadline=deadline)}]
        if lead.offered_to and lead.offer_until:
            elements.append({"type": "mrkdwn", "text": t(
                "card.offered", lang, user=lead.offered_to, until=local_time(lead.offer_until, clock.tz, lang))})
        blocks.append({"type": "context", "elements": elements})
        blocks.append({"type": "actions", "block_id": BlockId.CARD_ACTIONS, "elements": [
            {"type": "button", "action_id": ActionId.CLAIM, "style": "primary", "value": str(lead.id),
             "text": plain(t("card.button.claim", lang))},
            {"type": "button", "action_id": ActionId.DISQUALIFY, "value": str(lead.id),
             "text": plain(t("card.button.disqualify", lang))},
        ]})
        fallback = t("card.fallback", lang, company=escape(company), name=escape(name),
                     score=lead.score, deadline=deadline)
    return fallback, blocks

