"""Modal submissions."""
from __future__ import annotations

from blocks import disqualify as disqualify_blocks
from blocks.ids import BlockId, CallbackId
from blocks.texts import t
from models.leads import LeadError, disqualify


def register(app, services) -> None:
    @app.view(CallbackId.DISQUALIFY)
    def on_disqualify_submit(ack, body, view, context):
        lang = services.settings.LANGUAGE
        reason, note = disqualify_blocks.read_submission(view["state"]["values"])
        if reason is None:
            ack(response_action="errors", errors={BlockId.REASON: t("disqualify.reason_required", lang)})
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
                disqualify(session, lead_id, body["user"]["id"], reason, note, services.now(),
                           services.settings.MANAGER_IDS, services.settings.MARKETING_CHANNEL)
        except LeadError as exc:  # shown in the modal: the person sees why nothing changed
            ack(response_action="errors", errors={BlockId.REASON: t(exc.key, lang, **exc.params)})
            return
        ack()
        services.notify()
