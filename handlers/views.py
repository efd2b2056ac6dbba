"""Modal submissions: Lost… and Not a fit… (callback_id lead_lost, lead_disqualify)."""
from __future__ import annotations

from blocks import outcome as outcome_blocks
from blocks.ids import BlockId, CallbackId
from blocks.texts import t
from handlers.errors import domain_params
from handlers.home import refresh_after
from models import outcomes
from models.leads import LeadError


def register(app, services) -> None:
    def on_submit(outcome: str):
        def submit(ack, body, view, context):
            settings = services.settings
            lang = settings.LANGUAGE
            reasons = outcomes.reasons_for(outcome, settings)
            reason, note = outcome_blocks.read_submission(view["state"]["values"], reasons)
            if reason is None:  # shown in the modal, next to the field
                ack(response_action="errors", errors={BlockId.REASON: t("modal.reason_required", lang)})
                return
            try:
                lead_id = int(view.get("private_metadata") or "")
            except ValueError:
                lead_id = -1
            try:
                with services.once(context) as session:
                    if session is None:
                        ack()
                        return
                    outcomes.record(session, lead_id, body["user"]["id"], outcome, services.now(),
                                    managers=settings.MANAGER_IDS, policy=services.policy.sla, reason=reason,
                                    note=note, reasons=reasons, marketing_channel=settings.MARKETING_CHANNEL)
            except LeadError as exc:  # shown in the modal: the person sees why nothing changed
                ack(response_action="errors", errors={BlockId.REASON: t(exc.key, lang,
                                                                         **domain_params(exc.params, lang))})
                return
            ack()
            services.notify()
            refresh_after(services, body)
        submit.__name__ = f"on_{outcome}_submit"
        return submit

    app.view(CallbackId.LOST)(on_submit(outcomes.LOST))
    app.view(CallbackId.DISQUALIFY)(on_submit(outcomes.DISQUALIFIED))
