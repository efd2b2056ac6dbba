"""POST /hooks/leads: leads from marketing automation, CRMs and Zapier (docs/http.md)."""
from __future__ import annotations

import hmac
import json
import logging

from flask import Response, request

from blocks.texts import t
from models import hubspot
from models.intake import ingest
from models.leads import FieldError, IdentityConflict, parse_lead

log = logging.getLogger("handoff.webhook")
MAX_BODY = 1024 * 1024
MAX_BATCH = 500
LEAD_KEYS = {"email", "score", "external_id", "name", "company", "title", "source", "created_at", "attributes"}


def json_answer(status: int, obj) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, mimetype="application/json")


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_body(raw: bytes, tz, score_property: str = "hubspotscore") -> tuple[list | None, bool, int, dict | None]:
    """(leads, is_batch, 0, None), or (None, _, status, problem) for a body that must be refused."""
    try:
        data = json.loads(raw, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None, False, 400, {"error": "api.not_json"}
    if isinstance(data, dict) and "leads" in data:
        batch = data["leads"]
        if not isinstance(batch, list):
            return None, False, 422, {"errors": [FieldError("leads", "api.body_shape")]}
        if not batch:
            return None, False, 422, {"errors": [FieldError("leads", "api.batch_empty")]}
        if len(batch) > MAX_BATCH:
            return None, False, 422, {"errors": [FieldError("leads", "api.batch_too_big", {"max": MAX_BATCH})]}
        items, errors = [], []
        for i, obj in enumerate(batch):
            item, errs = parse_lead(obj, tz, prefix=f"leads[{i}].")
            items.append(item)
            errors.extend(errs)
    elif hubspot.is_workflow_body(data, score_property):  # HubSpot's workflow webhook (docs/hubspot.md)
        lead, prefix = hubspot.lead_from_workflow(data, score_property)
        item, errors = parse_lead(lead, tz)
        errors = [FieldError(prefix + hubspot.field_name(e.field, score_property), e.key, e.params) for e in errors]
        items = [item]
    elif isinstance(data, dict) and not data.keys() & LEAD_KEYS:
        return None, False, 422, {"errors": [FieldError("body", "api.unknown_shape")]}
    elif isinstance(data, dict):
        item, errors = parse_lead(data, tz)
        items = [item]
    else:
        return None, False, 422, {"errors": [FieldError("body", "api.body_shape")]}
    if errors:
        return None, False, 422, {"errors": errors}
    return items, isinstance(data, dict) and "leads" in data, 0, None


UNSET_TOKEN = (503, "api.not_configured")  # a webhook whose token is not set yet: say so, and come back later


def authorized_body(settings, expected: str | None, unset: tuple[int, str] = UNSET_TOKEN) -> bytes | Response:
    """The request's body, read once its bearer token is `expected` and its size is allowed; else the answer to
    give (`unset`, a status and its message, while no token is set; 401; 413). Shared by /hooks/leads and
    /hooks/status (LEAD_WEBHOOK_TOKEN) and /hooks/privacy (PRIVACY_TOKEN, 404 while unset)."""
    lang = settings.LANGUAGE
    if not expected:
        return json_answer(unset[0], {"error": t(unset[1], lang)})
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        return json_answer(401, {"error": t("api.unauthorized", lang)})
    if (request.content_length or 0) > MAX_BODY:
        return json_answer(413, {"error": t("api.too_large", lang)})
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return json_answer(413, {"error": t("api.too_large", lang)})
    return raw


def refusal(status: int, problem: dict, lang: str) -> Response:
    """A 4xx: every field error with its message, or one error."""
    if "errors" in problem:
        return json_answer(status, {"errors": [
            {"field": e.field, "message": t(e.key, lang, **e.params)} for e in problem["errors"]]})
    return json_answer(status, {"error": t(problem["error"], lang)})


def register(flask_app, services) -> None:
    settings = services.settings

    @flask_app.post("/hooks/leads")
    def hooks_leads():
        lang = settings.LANGUAGE
        raw = authorized_body(settings, settings.LEAD_WEBHOOK_TOKEN)
        if isinstance(raw, Response):
            return raw

        items, is_batch, status, problem = parse_body(raw, settings.tz, settings.HUBSPOT_SCORE_PROPERTY)
        if problem is not None:
            return refusal(status, problem, lang)

        try:  # a concurrent insert of the same new lead: the run again finds it (docs/identity.md)
            results = services.db.transact(lambda session: ingest(session, items, services.now(), services.policy))
        except IdentityConflict as conflict:
            error = conflict.error(f"leads[{conflict.index}]." if is_batch else "")
            return json_answer(422, {"errors": [{"field": error.field, "message": t(error.key, lang, **error.params)}]})
        services.notify()

        answers = [{"id": r.id, "status": r.status, "created": r.created} if r.id is not None
                   else {"status": r.status, "created": False} for r in results]
        any_created = any(r.created for r in results)
        if not is_batch:
            return json_answer(201 if any_created else 200, answers[0])
        dropped = sum(r.id is None for r in results)  # suppressed (docs/privacy.md): counted apart, said only then
        return json_answer(201 if any_created else 200, {"leads": answers,
                                                   "created": sum(a["created"] for a in answers),
                                                   "updated": sum(not a["created"] for a in answers) - dropped,
                                                   **({"suppressed": dropped} if dropped else {})})
