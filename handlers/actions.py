"""Button clicks on the handoff card.

Each click is acknowledged at once on the request thread (`ack_now`), and its
work runs as a Bolt lazy listener on a worker thread: the answer Slack waits
for never queues behind database work, however many clicks arrive together.
"""
from __future__ import annotations

from blocks import disqualify as disqualify_blocks
from blocks.ids import ActionId
from handlers.errors import explained
from models.leads import LeadNotFound, check_can_disqualify, claim
from models.tables import Lead


def lead_id_of(action: dict) -> int:
    try:
        return int(action.get("value", ""))
    except ValueError:
        raise LeadNotFound() from None


def ack_now(ack):
    ack()


def register(app, services) -> None:
    @explained(services)
    def claim_lead(body, action, context):
        with services.once(context) as session:
            if session is None:
                return
            claim(session, lead_id_of(action), body["user"]["id"], services.now())
        services.notify()

    @explained(services)
    def open_disqualify_modal(body, action, client, context):
        lead_id = lead_id_of(action)
        with services.once(context) as session:
            if session is None:
                return
            lead = check_can_disqualify(session.get(Lead, lead_id), body["user"]["id"],
                                        services.settings.MANAGER_IDS)
            view = disqualify_blocks.modal(lead, services.settings.LANGUAGE)
        # The trigger_id lives about 3 s: open the modal now, directly, not through the outbox.
        client.views_open(trigger_id=body["trigger_id"], view=view)

    app.action(ActionId.CLAIM)(ack=ack_now, lazy=[claim_lead])
    app.action(ActionId.DISQUALIFY)(ack=ack_now, lazy=[open_disqualify_modal])
