"""The Lost… and Not a fit… modals, and the feedback post that goes back to marketing."""
from __future__ import annotations

from datetime import datetime

from blocks.format import clip, escape, local_time, plain, reason_label
from blocks.ids import BlockId, CallbackId
from blocks.texts import t
from models.tables import Lead

VALUE = "value"  # action_id of the input elements inside the modal's blocks
CALLBACKS = {"lost": CallbackId.LOST, "disqualified": CallbackId.DISQUALIFY}


def modal(outcome: str, lead: Lead, lang: str, reasons: tuple[str, ...]) -> dict:
    """The reason modal for `lost` or `disqualified`; the lead id travels in private_metadata."""
    company = lead.company or t("card.unknown_company", lang)
    name = lead.name or t("card.unknown_name", lang)
    return {
        "type": "modal",
        "callback_id": CALLBACKS[outcome],
        "private_metadata": str(lead.id),
        "title": plain(clip(t(f"{outcome}.title", lang), 24)),
        "submit": plain(clip(t(f"{outcome}.submit", lang), 24)),
        "close": plain(clip(t("modal.cancel", lang), 24)),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(t(
                f"{outcome}.intro", lang, company=escape(company), name=escape(name)), 2900)}},
            {"type": "input", "block_id": BlockId.REASON, "label": plain(t("modal.reason", lang)),
             "element": {"type": "static_select", "action_id": VALUE, "options": [
                 {"text": plain(clip(reason_label(code, lang), 75)), "value": code} for code in reasons]}},
            {"type": "input", "block_id": BlockId.NOTE, "optional": True,
             "label": plain(t("modal.note", lang)),
             "element": {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                         "max_length": 1000}},
        ],
    }


def read_submission(values: dict, reasons: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The reason code (None unless it is one of `reasons`) and note from a view_submission's state."""
    reason = (((values.get(BlockId.REASON) or {}).get(VALUE) or {}).get("selected_option") or {}).get("value")
    note = ((values.get(BlockId.NOTE) or {}).get(VALUE) or {}).get("value")
    return (reason if reason in reasons else None), (note.strip() or None) if note else None


def feedback(lead: Lead, payload: dict, when: datetime, tz, lang: str,
             permalink: str | None) -> tuple[str, list[dict]]:
    """The post to MARKETING_CHANNEL: what happened to the MQL and why, from the lead as it is now."""
    outcome = payload.get("outcome") or "disqualified"
    user = payload.get("user") or lead.claimed_by
    company = escape(lead.company or t("card.unknown_company", lang))
    name = escape(lead.name or t("card.unknown_name", lang))
    if outcome == "undone":
        head = t("feedback.undone", lang, company=company, name=name, user=user,
                 outcome=t(f"outcome.{payload.get('was')}", lang))
        return head, [{"type": "section", "text": {"type": "mrkdwn", "text": clip(head, 2900)}}]
    code = lead.lost_reason if outcome == "lost" else lead.disqualify_reason
    head = t(f"feedback.{outcome}", lang, company=company, name=name, reason=reason_label(code, lang))
    detail = t("feedback.detail", lang, source=escape(lead.source), score=lead.score, user=user,
               when=local_time(when, tz, lang))
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(head, 2900)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(detail, 2900)}]},
    ]
    note = payload.get("note")
    if note:
        blocks.append({"type": "section", "text": plain(clip(f"{t('feedback.note', lang)}: {note}", 2900))})
    if permalink:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": t("feedback.link", lang, url=permalink)}]})
    return head, blocks
