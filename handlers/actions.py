"""Button clicks on the handoff card."""
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


def register(app, services) -> None:
    @app.action(ActionId.CLAIM)
    @explained(services)
    def on_claim(ack, body, action, context):
        ack()
        with services.once(context) as session:
            if session is None:
                return
            claim(session, lead_id_of(action), body["user"]["id"], services.now())
        services.notify()

    @app.action(ActionId.DISQUALIFY)
    @explained(services)
    def on_disqualify(ack, body, action, client, context):
        ack()
        lead_id = lead_id_of(action)
        with services.once(context) as session:
            if session is None:
                return
            lead = check_can_disqualify(session.get(Lead, lead_id), body["user"]["id"],
                                        services.settings.MANAGER_IDS)
            view = disqualify_blocks.modal(lead, services.settings.LANGUAGE)
        # The trigger_id lives about 3 s: open the modal now, directly, not through the outbox.
        client.views_open(trigger_id=body["trigger_id"], view=view)
