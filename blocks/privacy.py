"""What Slack shows of an erased lead's messages (docs/privacy.md): every message Handoff posted about it, other
than its cards (blocks/card.py `erased_card`), is edited to this, which shows nothing about the person."""
from __future__ import annotations

from blocks.texts import t


def erased_message(lead_id: int, lang: str) -> tuple[str, list[dict]]:
    """A reminder, escalation, DM or marketing post about a lead whose person was erased."""
    text = t("privacy.message.erased", lang, id=lead_id)
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
