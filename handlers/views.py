"""Modal submissions: Lost… and Not a fit… (callback_id lead_lost, lead_disqualify), and SQL handed to the next
team (lead_sql, docs/routing.md)."""
from __future__ import annotations

from blocks import outcome as outcome_blocks
from blocks.ids import BlockId, CallbackId
from blocks.texts import t
from handlers.actions import StaleControl, parse_lead_id
from handlers.errors import domain_params
from handlers.home import refresh_after
from models import outcomes
from models.handover import qualify
from models.leads import LeadError


def too_long(text: str | None, limit: int, lang: str) -> str | None:
    """The per-field error for free text over its input's max_length (the same limit, on the server)."""
    if text is None or len(text) <= limit:
        return None
    return t("modal.too_long", lang, limit=f"{limit:,}", length=f"{len(text):,}")


def register(app, services) -> None:
    def apply_form(ack, body, view, context, field: str, work) -> None:
        """`work(session, lead_id)` once per request for the lead the form was opened for; a refusal is shown in
        the form next to `field` (the person sees why nothing changed), else the form closes."""
        lang = services.settings.LANGUAGE
        try:
            lead_id = parse_lead_id(view.get("private_metadata"))
            with services.once(context) as session:
                if session is None:
                    ack()
                    return
                work(session, lead_id)
        except LeadError as exc:
            key = "notice.stale_form" if isinstance(exc, StaleControl) else exc.key
            ack(response_action="errors", errors={field: t(key, lang, **domain_params(exc.params, lang))})
            return
        ack()
        services.notify()
        refresh_after(services, body)

    def on_submit(outcome: str):
        def submit(ack, body, view, context):
            settings = services.settings
            lang = settings.LANGUAGE
            reasons = outcomes.reasons_for(outcome, settings)
            reason, note = outcome_blocks.read_submission(view["state"]["values"], reasons)
            errors = {}
            if reason is None:  # shown in the modal, next to the field
                errors[BlockId.REASON] = t("modal.reason_required", lang)
            if problem := too_long(note, outcome_blocks.NOTE_MAX, lang):
                errors[BlockId.NOTE] = problem
            if errors:
                ack(response_action="errors", errors=errors)
                return
            apply_form(ack, body, view, context, BlockId.REASON, lambda session, lead_id: outcomes.record(
                session, lead_id=lead_id, user=body["user"]["id"], outcome=outcome, now=services.now(),
                managers=services.managers_of(session, lead_id), reason=reason, note=note, reasons=reasons,
                marketing_channel=settings.MARKETING_CHANNEL))
        submit.__name__ = f"on_{outcome}_submit"
        return submit

    app.view(CallbackId.LOST)(on_submit(outcomes.LOST))
    app.view(CallbackId.DISQUALIFY)(on_submit(outcomes.DISQUALIFIED))

    @app.view(CallbackId.QUALIFY)
    def on_qualify_submit(ack, body, view, context):
        """SQL with a note, handed to the next team (models/handover.py); a refusal shows in the form."""
        lang = services.settings.LANGUAGE
        note = outcome_blocks.state_value(view["state"]["values"], BlockId.NOTE, outcome_blocks.VALUE, "value")
        note = (note.strip() or None) if isinstance(note, str) else None
        if problem := too_long(note, outcome_blocks.NOTE_MAX, lang):
            ack(response_action="errors", errors={BlockId.NOTE: problem})
            return
        apply_form(ack, body, view, context, BlockId.NOTE, lambda session, lead_id: qualify(
            session, lead_id=lead_id, user=body["user"]["id"], note=note, now=services.now(),
            managers=services.managers_of(session, lead_id), teams=services.teams, clock=services.settings.clock))
