"""POST /hooks/privacy: erase a person on request, from a CRM's own deletion or a privacy tool (docs/privacy.md).

Its own bearer token, PRIVACY_TOKEN (the endpoint answers 404 while it is unset): whoever may send leads may not
erase them. The body is `{"action": "erase", "email": …}` or `{"action": "erase", "external_id": …}`, with
`"suppress": true` to refuse that email from then on. The answer, `{"erased": N}`, comes once the database part is
committed; the Slack edits and the `lead.erased` event go out through the outbox after it. Export is never served
over HTTP.
"""
from __future__ import annotations

import json
import logging

from flask import Response

from handlers.webhook import authorized_body, json_answer, refusal, reject_constant
from models import privacy
from models.leads import FieldError

log = logging.getLogger("handoff.privacy")
KEYS = {"action", "email", "external_id", "suppress"}


def parse_body(raw: bytes) -> tuple[dict | None, int, dict | None]:
    """({"email" | "external_id": …, "suppress": bool}, 0, None), or (None, status, problem)."""
    try:
        data = json.loads(raw, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None, 400, {"error": "api.not_json"}
    if not isinstance(data, dict):
        return None, 422, {"errors": [FieldError("body", "api.privacy_shape")]}
    if data.get("action") != "erase":
        return None, 422, {"errors": [FieldError("action", "api.privacy_action")]}
    unknown = sorted(set(data) - KEYS)
    if unknown:
        return None, 422, {"errors": [FieldError(unknown[0], "field.unknown")]}
    suppress = data.get("suppress", False)
    if not isinstance(suppress, bool):
        return None, 422, {"errors": [FieldError("suppress", "field.boolean")]}
    email, external_id = data.get("email"), data.get("external_id")
    if (email is None) == (external_id is None):
        return None, 422, {"errors": [FieldError("email", "api.privacy_who")]}
    if email is not None:
        if not isinstance(email, str):
            return None, 422, {"errors": [FieldError("email", "field.email")]}
        try:
            privacy.normalized(email)
        except privacy.NotAnEmail:
            return None, 422, {"errors": [FieldError("email", "field.email")]}
        return {"email": email, "suppress": suppress}, 0, None
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 200:
        return None, 422, {"errors": [FieldError("external_id", "field.external_id")]}
    return {"external_id": external_id, "suppress": suppress}, 0, None


def register(flask_app, services) -> None:
    settings = services.settings

    @flask_app.post("/hooks/privacy")
    def hooks_privacy():
        lang = settings.LANGUAGE
        raw = authorized_body(settings, settings.PRIVACY_TOKEN, unset=(404, "api.not_found"))
        if isinstance(raw, Response):
            return raw
        asked, status, problem = parse_body(raw)
        if problem is not None:
            return refusal(status, problem, lang)
        done = services.db.transact(lambda session: privacy.erase_person(
            session, email=asked.get("email"), external_id=asked.get("external_id"), suppress_it=asked["suppress"],
            how="http", now=services.now()))
        services.notify()
        log.info("erasure asked over HTTP: %d lead(s) erased%s", len(done.lead_ids),
                 ", email suppressed" if done.suppressed else "")
        return json_answer(200, {"erased": len(done.lead_ids)})
