"""The Lost… and Not a fit… modals, and the feedback post that goes back to marketing."""
from __future__ import annotations

from datetime import datetime, tzinfo

from blocks.format import clip, escape, local_time, plain, reason_label, who
from blocks.ids import BlockId, CallbackId
from blocks.texts import t
from models.tables import Lead

VALUE = "value"  # action_id of the input elements inside the modal's blocks
NOTE_MAX = 1000  # characters: the note input's max_length, enforced again on submission
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
                         "max_length": NOTE_MAX}},
        ],
    }


def qualify_modal(lead: Lead, lang: str, to_team: str) -> dict:
    """SQL in a team with `next`: an optional note for the team the lead is handed to; the lead id travels in
    private_metadata (callback_id lead_sql)."""
    company = lead.company or t("card.unknown_company", lang)
    name = lead.name or t("card.unknown_name", lang)
    return {
        "type": "modal",
        "callback_id": CallbackId.QUALIFY,
        "private_metadata": str(lead.id),
        "title": plain(clip(t("qualify.title", lang), 24)),
        "submit": plain(clip(t("qualify.submit", lang), 24)),
        "close": plain(clip(t("modal.cancel", lang), 24)),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(t(
                "qualify.intro", lang, company=escape(company), name=escape(name), team=escape(to_team)), 2900)}},
            {"type": "input", "block_id": BlockId.NOTE, "optional": True,
             "label": plain(t("qualify.note", lang)),
             "element": {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                         "max_length": NOTE_MAX}},
        ],
    }


def state_value(values: dict, *path: str):
    """What a view_submission's state holds at `path`, or None wherever its shape is not what we built."""
    found = values
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    return found


def read_submission(values: dict, reasons: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The reason code (None unless it is one of `reasons`) and note from a view_submission's state."""
    reason = state_value(values, BlockId.REASON, VALUE, "selected_option", "value")
    note = state_value(values, BlockId.NOTE, VALUE, "value")
    note = (note.strip() or None) if isinstance(note, str) else None
    return (reason if isinstance(reason, str) and reason in reasons else None), note


def feedback(lead: Lead, *, outcome: str, user: str | None, note: str | None, was: str | None, when: datetime,
             tz: tzinfo, lang: str, permalink: str | None, crm: bool = False) -> tuple[str, list[dict]]:
    """The post to MARKETING_CHANNEL: what happened to the MQL and why, from the lead as it is now.
    `outcome` is lost, disqualified or undone (then `was` is the outcome taken back)."""
    user = user or lead.claimed_by
    company = escape(lead.company or t("card.unknown_company", lang))
    name = escape(lead.name or t("card.unknown_name", lang))
    if outcome == "undone":
        head = t("feedback.undone", lang, company=company, name=name, user=user,
                 outcome=t(f"outcome.{was}", lang))
        return head, [{"type": "section", "text": {"type": "mrkdwn", "text": clip(head, 2900)}}]
    code = lead.lost_reason if outcome == "lost" else lead.disqualify_reason
    head = t(f"feedback.{outcome}", lang, company=company, name=name, reason=reason_label(code, lang))
    detail = t("feedback.detail", lang, source=escape(lead.source), score=lead.score, who=who(user, lang),
               crm=t("card.in_crm", lang) if crm else "",
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
