"""The SLA messages: nags in the card's thread, DMs to owners, escalations to managers.

Each builder takes the lead as it stands when the message is sent and `now`,
so "2 h left" is true at the moment it arrives, not when it was queued.
"""
from __future__ import annotations

from datetime import datetime

from blocks.format import button, clip, duration, escape, local_time, plain
from blocks.ids import ActionId, BlockId
from blocks.texts import t
from models.clock import BusinessClock
from models.tables import Lead


def _who(lead: Lead, lang: str) -> dict[str, str]:
    return {"company": escape(clip(lead.company or t("card.unknown_company", lang), 150)),
            "name": escape(clip(lead.name or t("card.unknown_name", lang), 150))}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 2900)}}



def _snooze_blocks(lead: Lead, lang: str, with_contact: bool) -> list[dict]:
    first = [button(t("remind.button.snooze_hour", lang), ActionId.SNOOZE, f"{lead.id}:1h")]
    if with_contact:
        first.insert(0, button(t("remind.button.contacted", lang), ActionId.CONTACTED, str(lead.id), "primary"))
    # Two blocks: an action_id may appear once per block, and both snooze choices use lead_snooze.
    return [{"type": "actions", "block_id": f"{BlockId.REMIND_ACTIONS}:{lead.id}", "elements": first},
            {"type": "actions", "block_id": f"{BlockId.REMIND_MORE}:{lead.id}", "elements": [
                button(t("remind.button.snooze_tomorrow", lang), ActionId.SNOOZE, f"{lead.id}:tomorrow")]}]


def _reassign_block(lead: Lead, lang: str) -> dict:
    # users_select carries no value: the lead id travels in the block_id.
    return {"type": "actions", "block_id": f"{BlockId.REASSIGN}:{lead.id}", "elements": [
        {"type": "users_select", "action_id": ActionId.REASSIGN,
         "placeholder": plain(t("remind.reassign.placeholder", lang))}]}


def message(action: str, lead: Lead, payload: dict, now: datetime, lang: str,
            clock: BusinessClock) -> tuple[str, list[dict]]:
    """Fallback text and blocks for one SLA message."""
    who = _who(lead, lang)
    tz = clock.tz
    again = t("remind.again", lang) if payload.get("repeat") else ""
    if action in ("claim_remind", "handed_remind"):  # the first claim, or the claim of a team an SQL was handed to
        due = lead.claim_due if action == "claim_remind" else lead.handed_claim_due
        left = duration(clock.minutes_between(now, due), lang)
        text = t(f"remind.{action.removesuffix('_remind')}", lang, left=left, deadline=local_time(due, tz, lang))
        return text, [_section(text)]
    if action in ("claim_due", "handed_due"):
        due = lead.claim_due if action == "claim_due" else lead.handed_claim_due
        mentions = " ".join(f"<@{m}>" for m in payload.get("managers") or [])
        text = t(f"remind.{action}", lang, deadline=local_time(due, tz, lang), managers=mentions)
        return text, [_section(text)]
    if action == "claim_escalate":
        waited = duration(clock.minutes_between(lead.mql_at, now), lang)
        text = t("remind.claim_escalate", lang, waited=waited, score=lead.score, **who)
        return text, [_section(text), _reassign_block(lead, lang)]
    if action == "contact_remind":
        left = duration(clock.minutes_between(now, lead.contact_due), lang)
        text = again + t("remind.contact", lang, left=left, deadline=local_time(lead.contact_due, tz, lang), **who)
        return text, [_section(text), *_snooze_blocks(lead, lang, with_contact=True)]
    if action == "contact_due":
        text = t("remind.contact_due", lang, owner=lead.claimed_by,
                 deadline=local_time(lead.contact_due, tz, lang), **who)
        return text, [_section(text), _reassign_block(lead, lang)]
    if action == "outcome_remind":
        since = duration(clock.minutes_between(lead.contacted_at, now), lang)
        text = again + t("remind.outcome", lang, since=since, **who)
        blocks = [_section(text), *_snooze_blocks(lead, lang, with_contact=False)]
        blocks[1]["elements"].append(button(t("card.button.disqualify", lang), ActionId.DISQUALIFY, str(lead.id)))
        return text, blocks
    if action == "offered":
        text = t("remind.offered", lang, score=lead.score, until=local_time(lead.offer_until or now, tz, lang), **who)
        return text, [_section(text), {"type": "actions", "block_id": f"{BlockId.REMIND_ACTIONS}:{lead.id}",
                                       "elements": [button(t("card.button.claim", lang), ActionId.CLAIM,
                                                            str(lead.id), "primary")]}]
    if action == "offer_expire":
        text = t("remind.offer_expired", lang, user=payload.get("was") or "")
        return text, [_section(text)]
    if action == "handed_escalate":
        waited = duration(clock.minutes_between(lead.sql_at, now), lang)
        text = t("remind.handed_escalate", lang, waited=waited, qualifier=lead.qualified_by or "-", **who)
        return text, [_section(text), _reassign_block(lead, lang)]
    if action == "quality":
        from models.outcomes import outcome_of

        text = t("remind.quality", lang, outcome=t(f"outcome.{outcome_of(lead) or 'sql'}", lang), **who)
        return text, [_section(text), {"type": "actions", "block_id": f"{BlockId.REMIND_ACTIONS}:{lead.id}",
                                       "elements": [
            button(t("remind.button.quality_good", lang), ActionId.QUALITY_GOOD, lead.id, "primary"),
            button(t("remind.button.quality_bad", lang), ActionId.QUALITY_BAD, lead.id)]}]
    if action == "assigned":
        text = t("remind.assigned", lang, by=payload.get("by") or "",
                 deadline=local_time(lead.contact_due, tz, lang), **who)
        blocks = [_section(text)]
        if lead.contacted_at is None:
            blocks.append({"type": "actions", "block_id": f"{BlockId.REMIND_ACTIONS}:{lead.id}", "elements": [
                button(t("remind.button.contacted", lang), ActionId.CONTACTED, str(lead.id), "primary")]})
        return text, blocks
    raise ValueError(f"unknown reminder {action!r}")


def still_relevant(action: str, lead: Lead, payload: dict) -> bool:
    """Whether the message still has a reason to be sent now (nothing stale ever goes out; nothing about a lead
    whose person was erased)."""
    if lead.erased_at is not None:
        return False
    user = payload.get("user")
    if action == "quality":
        return lead.quality is None and lead.claimed_by == user
    if lead.mql_at is None or lead.closed:
        return False
    if action in ("claim_remind", "claim_due", "claim_escalate"):
        return lead.claimed_at is None
    if action in ("handed_remind", "handed_due", "handed_escalate"):
        return lead.handed_to is not None and lead.handed_claimed_at is None
    if action == "contact_remind":
        return lead.contacted_at is None and lead.owner == user
    if action == "contact_due":
        return lead.contacted_at is None and lead.claimed_by is not None
    if action == "outcome_remind":
        return lead.contacted_at is not None and lead.sql_at is None and lead.owner == user
    if action == "offered":
        return lead.claimed_at is None and lead.offered_to == user
    if action == "offer_expire":
        return lead.claimed_at is None
    if action == "assigned":
        return lead.owner == user
    return False
