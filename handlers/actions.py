"""Button clicks on the handoff card.

A click is written down and acknowledged on the request thread, and its work runs in the click queue
(handlers/clicks.py) where the deliveries run: the answer Slack waits for never queues behind the claim's
database work, however many clicks arrive together, and an acknowledged click survives a crash. The two
buttons that open a form (lost, not a fit) open it within the click, as Slack's trigger_id requires.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Executor

from blocks import outcome as outcome_blocks
from blocks.ids import ActionId
from blocks.texts import t
from handlers.errors import explained
from models import outcomes
from models.handover import HANDED, claim_handed, hands_over
from models.leads import SLACK_USER_RE, LeadError, claim
from models.ownership import log_contact, reassign, snooze
from models.tables import Lead

# What a control may carry back. Slack returns what we put in a button, but a request can be forged by
# anyone holding a signed one, so each value is read here, once, before it has any effect.
LEAD_ID = re.compile(r"[1-9][0-9]{0,18}")  # a positive id that fits the BIGINT column
MAX_LEAD_ID = 2**63 - 1
SNOOZE_CHOICES = ("1h", "tomorrow")


class StaleControl(LeadError):
    """A button, menu or form whose value is not one we could have sent (tampered, or from an old version)."""

    key = "notice.stale"


def parse_lead_id(raw) -> int:
    """A lead id as we write it into controls and private_metadata ("12"), else StaleControl."""
    if not isinstance(raw, str) or not LEAD_ID.fullmatch(raw) or int(raw) > MAX_LEAD_ID:
        raise StaleControl()
    return int(raw)


def lead_id_of(action: dict) -> int:
    """The lead a control is about: its value ("12" or "12:choice"), else its block_id ("reassign:12")."""
    value = action.get("value")
    raw = value.partition(":")[0] if value else (action.get("block_id") or "").rpartition(":")[2]
    return parse_lead_id(raw)


def choice_of(action: dict, choices: tuple[str, ...], default: str) -> str:
    """The choice after the lead id ("12:tomorrow"): one of `choices`, else StaleControl."""
    _, sep, choice = (action.get("value") or "").partition(":")
    if not sep:
        return default
    if choice not in choices:
        raise StaleControl()
    return choice


def user_of(action: dict) -> str:
    """The person picked in a users_select: a Slack user id, or "" (the domain says to pick someone)."""
    picked = action.get("selected_user")
    return picked if isinstance(picked, str) and SLACK_USER_RE.fullmatch(picked) else ""



def ack_now(ack):
    ack()


def click_work(services) -> dict[str, Callable]:
    """What each queued button does (handlers/clicks.py applies them, each a `Work` as defined there): the
    domain operation in the click queue's transaction, at the instant of the click, and the private
    confirmation to send, if any."""
    settings, sla = services.settings, services.policy.sla

    def claim_lead(session, body, action, now):
        lead_id = lead_id_of(action)
        if choice_of(action, (HANDED,), "") == HANDED:  # the card of an SQL handed to this team
            claim_handed(session, lead_id=lead_id, user=body["user"]["id"], now=now)
            return None
        claim(session, lead_id=lead_id, user=body["user"]["id"], now=now, sla_policy=sla,
              managers=services.managers_of(session, lead_id))

    def contacted(session, body, action, now):
        lead_id = lead_id_of(action)
        log_contact(session, lead_id=lead_id, user=body["user"]["id"], now=now,
                    managers=services.managers_of(session, lead_id), policy=sla)
        return "notice.contacted", {}

    def snooze_nag(session, body, action, now):
        lead_id, choice = lead_id_of(action), choice_of(action, SNOOZE_CHOICES, "1h")
        until, count = snooze(session, lead_id=lead_id, user=body["user"]["id"], choice=choice, now=now,
                              managers=services.managers_of(session, lead_id), policy=sla)
        return "notice.snoozed", {"until": until, "count": count, "limit": sla.snooze_limit}

    def reassign_lead(session, body, action, now):
        new_owner, lead_id = user_of(action), lead_id_of(action)
        reassign(session, lead_id=lead_id, manager=body["user"]["id"], new_owner=new_owner,
                 now=now, managers=services.managers_of(session, lead_id), policy=sla)
        return "notice.reassigned", {"user": new_owner}

    def one_click(outcome: str):
        def record_outcome(session, body, action, now):
            lead_id = lead_id_of(action)
            outcomes.record(session, lead_id=lead_id, user=body["user"]["id"], outcome=outcome,
                            now=now, managers=services.managers_of(session, lead_id))
            return "notice.recorded", {"outcome": t(f"outcome.{outcome}", settings.LANGUAGE)}
        record_outcome.__name__ = f"record_{outcome}"  # the name its log lines carry
        return record_outcome

    def undo_outcome(session, body, action, now):
        lead_id = lead_id_of(action)
        _, was = outcomes.undo(session, lead_id=lead_id, user=body["user"]["id"], now=now,
                               managers=services.managers_of(session, lead_id), policy=sla,
                               marketing_channel=settings.MARKETING_CHANNEL)
        return "notice.undone", {"outcome": t(f"outcome.{was}", settings.LANGUAGE)}

    def rate(good: bool):
        def rate_quality(session, body, action, now):
            lead_id = lead_id_of(action)
            outcomes.rate_quality(session, lead_id=lead_id, user=body["user"]["id"], good=good,
                                  now=now, managers=services.managers_of(session, lead_id))
            return "notice.quality", {"rating": t("quality.good" if good else "quality.bad", settings.LANGUAGE)}
        rate_quality.__name__ = f"rate_quality_{'good' if good else 'bad'}"
        return rate_quality

    return {ActionId.CLAIM: claim_lead, ActionId.CONTACTED: contacted, ActionId.SQL: one_click(outcomes.SQL),
            ActionId.WON: one_click(outcomes.WON), ActionId.UNDO: undo_outcome,
            ActionId.QUALITY_GOOD: rate(True), ActionId.QUALITY_BAD: rate(False), ActionId.SNOOZE: snooze_nag,
            ActionId.REASSIGN: reassign_lead}


def register(app, services, recorder: Executor) -> None:
    """The card's buttons: most go through the click queue (handlers/clicks.py), which answers at once and
    applies them; `recorder` is where it writes a click down when that cannot be done in the answer. The two
    that open a form do that within the click."""
    def reason_modal(outcome: str):
        @explained(services)
        def open_modal(body, action, client, context):
            lead_id = lead_id_of(action)
            with services.once(context) as session:
                if session is None:
                    return
                lead = outcomes.check_can_record(session, session.get(Lead, lead_id), user=body["user"]["id"],
                                                 outcome=outcome, managers=services.managers_of(session, lead_id))
                view = outcome_blocks.modal(outcome, lead, services.settings.LANGUAGE,
                                            outcomes.reasons_for(outcome, services.settings))
            # The trigger_id lives about 3 s: open the modal now, directly, not through the outbox.
            client.views_open(trigger_id=body["trigger_id"], view=view)
        open_modal.__name__ = f"open_{outcome}_modal"
        return open_modal

    @explained(services)
    def sql_or_hand_over(body, action, client, context):
        """SQL on a card of a team with `next` opens the hand-over form (its trigger_id lives about 3 s);
        anywhere else it is the one-click SQL, queued like the other buttons."""
        lead_id, user = lead_id_of(action), body["user"]["id"]
        with services.db.begin() as session:
            lead = session.get(Lead, lead_id)
            to = hands_over(services.teams, lead) if lead is not None else None
            if to is not None:
                lead = outcomes.check_can_record(session, lead, user=user, outcome=outcomes.SQL,
                                                 managers=services.managers_of(session, lead_id))
                view = outcome_blocks.qualify_modal(lead, services.settings.LANGUAGE, to.name or to.id)
        if to is None:
            record_click(lambda: None, body, action, context)
            return
        client.views_open(trigger_id=body["trigger_id"], view=view)

    record_click = services.clicks.ack_listener(recorder)
    hand_overs = any(team.next for team in services.teams)
    for action_id in services.clicks.work:
        if action_id == ActionId.SQL and hand_overs:  # some team hands its SQLs on: decided per lead
            app.action(action_id)(ack=ack_now, lazy=[sql_or_hand_over])
            continue
        app.action(action_id)(record_click)
    app.action(ActionId.LOST)(ack=ack_now, lazy=[reason_modal(outcomes.LOST)])
    app.action(ActionId.DISQUALIFY)(ack=ack_now, lazy=[reason_modal(outcomes.DISQUALIFIED)])
