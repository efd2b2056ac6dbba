"""The not-a-fit modal and the feedback post that goes back to marketing."""
from __future__ import annotations

from datetime import datetime

from blocks.format import clip, plain, escape, local_time, reason_label
from blocks.ids import BlockId, CallbackId, DISQUALIFY_REASONS
from blocks.texts import t
from models.tables import Lead

VALUE = "value"  # action_id of the input elements inside the modal's blocks



def modal(lead: Lead, lang: str) -> dict:
    company = lead.company or t("card.unknown_company", lang)
    name = lead.name or t("card.unknown_name", lang)
    return {
        "type": "modal",
        "callback_id": CallbackId.DISQUALIFY,
        "private_metadata": str(lead.id),
        "title": plain(clip(t("disqualify.title", lang), 24)),
        "submit": plain(clip(t("disqualify.submit", lang), 24)),
        "close": plain(clip(t("disqualify.cancel", lang), 24)),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(t(
                "disqualify.intro", lang, company=escape(company), name=escape(name)), 2900)}},
            {"type": "input", "block_id": BlockId.REASON, "label": plain(t("disqualify.reason", lang)),
             "element": {"type": "static_select", "action_id": VALUE, "options": [
                 {"text": plain(reason_label(code, lang)), "value": code} for code in DISQUALIFY_REASONS]}},
            {"type": "input", "block_id": BlockId.NOTE, "optional": True,
             "label": plain(t("disqualify.note", lang)),
             "element": {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                         "max_length": 1000}},
        ],
    }


def read_submission(values: dict) -> tuple[str | None, str | None]:
    """The reason code and note from a view_submission's state values."""
    reason = (((values.get(BlockId.REASON) or {}).get(VALUE) or {}).get("selected_option") or {}).get("value")
    note = ((values.get(BlockId.NOTE) or {}).get(VALUE) or {}).get("value")
    return (reason if reason in DISQUALIFY_REASONS else None), (note.strip() or None) if note else None


def feedback(lead: Lead, user: str, note: str | None, when: datetime, tz, lang: str,
             permalink: str | None) -> tuple[str, list[dict]]:
    company = escape(lead.company or t("card.unknown_company", lang))
    name = escape(lead.name or t("card.unknown_name", lang))
    reason = reason_label(lead.disqualify_reason, lang)
    head = t("feedback.disqualified", lang, company=company, name=name, reason=reason)
    detail = t("feedback.detail", lang, source=escape(lead.source), score=lead.score, user=user,
               when=local_time(when, tz, lang))
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(head, 2900)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(detail, 2900)}]},
    ]
    if note:
        blocks.append({"type": "section", "text": plain(clip(f"{t('feedback.note', lang)}: {note}", 2900))})
    if permalink:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": t("feedback.link", lang, url=permalink)}]})
    return head, blocks
