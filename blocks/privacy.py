"""What Slack shows of an erased lead (docs/privacy.md): its cards and every other message Handoff posted about it
are edited to these, which keep where the lead stood and show nothing about the person."""
from __future__ import annotations

from blocks.format import plain
from blocks.texts import t
from models.clock import BusinessClock
from models.tables import Lead


def erased_card(lead: Lead, lang: str, clock: BusinessClock) -> tuple[str, list[dict]]:
    """A card (the first team's or the handed-over one) once its person was erased: the lead's number, that it
    was erased, and its status lines (owner, SLA, outcome, rating); no buttons."""
    from blocks.card import status_lines

    blocks = [{"type": "header", "text": plain(t("privacy.card.header", lang, id=lead.id))},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": t("privacy.card.erased", lang)}]}]
    if lead.claimed_at is not None or lead.disqualified_at is not None:
        blocks.append({"type": "context", "elements": status_lines(lead, lang, clock)})
    return t("privacy.card.fallback", lang, id=lead.id), blocks


def erased_message(lead_id: int, lang: str) -> tuple[str, list[dict]]:
    """A reminder, escalation, DM or marketing post about a lead whose person was erased."""
    text = t("privacy.message.erased", lang, id=lead_id)
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
