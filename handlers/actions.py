"""Button clicks on the handoff card.

Each click is acknowledged at once on the request thread (`ack_now`), and its
work runs as a Bolt lazy listener on a worker thread: the answer Slack waits
for never queues behind database work, however many clicks arrive together.
"""
from __future__ import annotations

import logging
import re

from blocks import outcome as outcome_blocks
from blocks.ids import ActionId
from blocks.texts import t
from handlers.errors import explained, reply_privately
from models import outcomes
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


log = logging.getLogger("handoff.slack")


def ack_now(ack):
    ack()


def register(app, services) -> None:
    def once_then_notice(work):
        """A lazy listener: `work(session, body, action)` in the request's one transaction (a Slack retry
        finds it done and changes nothing), then the private notice it returns, if any."""
        @explained(services)
        def listener(body, action, context):
            def attempt():
                with services.once(context) as session:
                    if session is None:
                        return False, None
                    return True, work(session, body, action)
            # Acknowledged already: while the database is away this keeps trying, and if it stays away the
            # clicker is told it was not recorded (handlers/errors.py). Never silently dropped.
            done, notice = services.patiently(attempt)
            if not done:
                return
            services.notify()
            if notice is not None:
                try:
                    services.patiently(lambda: reply_privately(services, body, *notice), seconds=10)
                except Exception:  # the click is recorded; only its confirmation is lost
                    log.warning("could not queue the confirmation of a recorded click")
        listener.__name__ = work.__name__  # Bolt tells lazy listeners apart by name
        return listener

    settings, sla = services.settings, services.policy.sla

    @once_then_notice
    def claim_lead(session, body, action):
        claim(session, lead_id=lead_id_of(action), user=body["user"]["id"], now=services.now(), sla_policy=sla,
              managers=settings.MANAGER_IDS)

    @once_then_notice
    def contacted(session, body, action):
        log_contact(session, lead_id=lead_id_of(action), user=body["user"]["id"], now=services.now(),
                    managers=settings.MANAGER_IDS, policy=sla)
        return "notice.contacted", {}

    @once_then_notice
    def snooze_nag(session, body, action):
        lead_id, choice = lead_id_of(action), choice_of(action, SNOOZE_CHOICES, "1h")
        until, count = snooze(session, lead_id=lead_id, user=body["user"]["id"], choice=choice, now=services.now(),
                              managers=settings.MANAGER_IDS, policy=sla)
        return "notice.snoozed", {"until": until, "count": count, "limit": sla.snooze_limit}

    @once_then_notice
    def reassign_lead(session, body, action):
        new_owner = user_of(action)
        reassign(session, lead_id=lead_id_of(action), manager=body["user"]["id"], new_owner=new_owner,
                 now=services.now(), managers=settings.MANAGER_IDS, policy=sla)
        return "notice.reassigned", {"user": new_owner}

    def reason_modal(outcome: str):
        @explained(services)
        def open_modal(body, action, client, context):
            lead_id = lead_id_of(action)
            with services.once(context) as session:
                if session is None:
                    return
                lead = outcomes.check_can_record(session, session.get(Lead, lead_id), user=body["user"]["id"],
                                                 outcome=outcome, managers=services.settings.MANAGER_IDS)
                view = outcome_blocks.modal(outcome, lead, services.settings.LANGUAGE,
                                            outcomes.reasons_for(outcome, services.settings))
            # The trigger_id lives about 3 s: open the modal now, directly, not through the outbox.
            client.views_open(trigger_id=body["trigger_id"], view=view)
        open_modal.__name__ = f"open_{outcome}_modal"
        return open_modal

    def one_click(outcome: str):
        def record_outcome(session, body, action):
            outcomes.record(session, lead_id=lead_id_of(action), user=body["user"]["id"], outcome=outcome,
                            now=services.now(), managers=settings.MANAGER_IDS)
            return "notice.recorded", {"outcome": t(f"outcome.{outcome}", settings.LANGUAGE)}
        record_outcome.__name__ = f"record_{outcome}"
        return once_then_notice(record_outcome)

    @once_then_notice
    def undo_outcome(session, body, action):
        _, was = outcomes.undo(session, lead_id=lead_id_of(action), user=body["user"]["id"], now=services.now(),
                               managers=settings.MANAGER_IDS, policy=sla,
                               marketing_channel=settings.MARKETING_CHANNEL)
        return "notice.undone", {"outcome": t(f"outcome.{was}", settings.LANGUAGE)}

    def rate(good: bool):
        def rate_quality(session, body, action):
            outcomes.rate_quality(session, lead_id=lead_id_of(action), user=body["user"]["id"], good=good,
                                  now=services.now(), managers=settings.MANAGER_IDS)
            return "notice.quality", {"rating": t("quality.good" if good else "quality.bad", settings.LANGUAGE)}
        rate_quality.__name__ = f"rate_quality_{'good' if good else 'bad'}"
        return once_then_notice(rate_quality)

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
