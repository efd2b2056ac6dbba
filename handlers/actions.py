"""Button clicks on the handoff card.

Each click is acknowledged at once on the request thread (`ack_now`), and its
work runs as a Bolt lazy listener on a worker thread: the answer Slack waits
for never queues behind database work, however many clicks arrive together.
"""
from __future__ import annotations

from blocks import outcome as outcome_blocks
from blocks.ids import ActionId
from blocks.texts import t
from handlers.errors import explained, reply_privately
from models import outcomes
from models.leads import LeadNotFound, claim
from models.ownership import log_contact, reassign, snooze
from models.tables import Lead


def lead_id_of(action: dict) -> int:
    """The lead a control is about: its value ("12" or "12:choice"), else its block_id ("reassign:12")."""
    raw = action.get("value") or (action.get("block_id") or "").rpartition(":")[2]
    try:
        return int(raw.split(":")[0])
    except ValueError:
        raise LeadNotFound() from None


def choice_of(action: dict, default: str) -> str:
    _, _, choice = (action.get("value") or "").partition(":")
    return choice or default


def ack_now(ack):
    ack()


def register(app, services) -> None:
    @explained(services)
    def claim_lead(body, action, context):
        with services.once(context) as session:
            if session is None:
                return
            claim(session, lead_id_of(action), body["user"]["id"], services.now(), services.policy.sla,
                  services.settings.MANAGER_IDS)
        services.notify()

    @explained(services)
    def contacted(body, action, context):
        with services.once(context) as session:
            if session is None:
                return
            log_contact(session, lead_id_of(action), body["user"]["id"], services.now(),
                        services.settings.MANAGER_IDS, services.policy.sla)
        reply_privately(services, body, "notice.contacted", {})

    @explained(services)
    def snooze_nag(body, action, context):
        with services.once(context) as session:
            if session is None:
                return
            until, count = snooze(session, lead_id_of(action), body["user"]["id"], choice_of(action, "1h"),
                                  services.now(), services.settings.MANAGER_IDS, services.policy.sla)
        reply_privately(services, body, "notice.snoozed",
                        {"until": until, "count": count, "limit": services.policy.sla.snooze_limit})

    @explained(services)
    def reassign_lead(body, action, context):
        new_owner = action.get("selected_user") or ""
        with services.once(context) as session:
            if session is None:
                return
            reassign(session, lead_id_of(action), body["user"]["id"], new_owner, services.now(),
                     services.settings.MANAGER_IDS, services.policy.sla)
        reply_privately(services, body, "notice.reassigned", {"user": new_owner})

    def reason_modal(outcome: str):
        @explained(services)
        def open_modal(body, action, client, context):
            lead_id = lead_id_of(action)
            with services.once(context) as session:
                if session is None:
                    return
                lead = outcomes.check_can_record(session, session.get(Lead, lead_id), body["user"]["id"], outcome,
                                                 services.settings.MANAGER_IDS)
                view = outcome_blocks.modal(outcome, lead, services.settings.LANGUAGE,
                                            outcomes.reasons_for(outcome, services.settings))
            # The trigger_id lives about 3 s: open the modal now, directly, not through the outbox.
            client.views_open(trigger_id=body["trigger_id"], view=view)
        open_modal.__name__ = f"open_{outcome}_modal"
        return open_modal

    def one_click(outcome: str):
        @explained(services)
        def record_outcome(body, action, context):
            with services.once(context) as session:
                if session is None:
                    return
                outcomes.record(session, lead_id_of(action), body["user"]["id"], outcome, services.now(),
                                managers=services.settings.MANAGER_IDS, policy=services.policy.sla)
            lang = services.settings.LANGUAGE
            reply_privately(services, body, "notice.recorded", {"outcome": t(f"outcome.{outcome}", lang)})
        record_outcome.__name__ = f"record_{outcome}"
        return record_outcome

    @explained(services)
    def undo_outcome(body, action, context):
        with services.once(context) as session:
            if session is None:
                return
            _, was = outcomes.undo(session, lead_id_of(action), body["user"]["id"], services.now(),
                                   managers=services.settings.MANAGER_IDS, policy=services.policy.sla,
                                   marketing_channel=services.settings.MARKETING_CHANNEL)
        reply_privately(services, body, "notice.undone", {"outcome": t(f"outcome.{was}", services.settings.LANGUAGE)})

    def rate(good: bool):
        @explained(services)
        def rate_quality(body, action, context):
            with services.once(context) as session:
                if session is None:
                    return
                outcomes.rate_quality(session, lead_id_of(action), body["user"]["id"], good, services.now(),
                                      services.settings.MANAGER_IDS)
            rating = t("quality.good" if good else "quality.bad", services.settings.LANGUAGE)
            reply_privately(services, body, "notice.quality", {"rating": rating})
        rate_quality.__name__ = f"rate_quality_{'good' if good else 'bad'}"
        return rate_quality

    app.action(ActionId.CLAIM)(ack=ack_now, lazy=[claim_lead])
    app.action(ActionId.CONTACTED)(ack=ack_now, lazy=[contacted])
    app.action(ActionId.SQL)(ack=ack_now, lazy=[one_click(outcomes.SQL)])
    app.action(ActionId.WON)(ack=ack_now, lazy=[one_click(outcomes.WON)])
    app.action(ActionId.LOST)(ack=ack_now, lazy=[reason_modal(outcomes.LOST)])
    app.action(ActionId.DISQUALIFY)(ack=ack_now, lazy=[reason_modal(outcomes.DISQUALIFIED)])
    app.action(ActionId.UNDO)(ack=ack_now, lazy=[undo_outcome])
    app.action(ActionId.QUALITY_GOOD)(ack=ack_now, lazy=[rate(True)])
    app.action(ActionId.QUALITY_BAD)(ack=ack_now, lazy=[rate(False)])
    app.action(ActionId.SNOOZE)(ack=ack_now, lazy=[snooze_nag])
    app.action(ActionId.REASSIGN)(ack=ack_now, lazy=[reassign_lead])
