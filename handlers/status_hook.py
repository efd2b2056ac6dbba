"""POST /hooks/status: transitions recorded in the CRM (docs/crm-status.md).

The same bearer token, size limit and answers as /hooks/leads (handlers/webhook.py). A body is one generic
update, `{"updates": [...]}` of up to 500, or a HubSpot workflow's webhook (either shape). Every update is
checked before anything is applied: one invalid field refuses the whole body (422 naming it). The updates are
then applied in one transaction (models/crm_status.py) and answered one result each, in order.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from flask import Response
from slack_sdk.errors import SlackApiError

from handlers.webhook import authorized_body, json_answer, refusal, reject_constant
from models import crm_status, hubspot
from models.leads import FieldError
from outbox.sender import make_client

log = logging.getLogger("handoff.status")
MAX_UPDATES = 500
GENERIC_KEYS = {"status", "external_id", "email", "at", "reason", "note", "by"}


def parse_body(raw: bytes, tz) -> tuple[list[crm_status.StatusUpdate] | None, int, dict | None]:
    """(updates, 0, None), or (None, status, problem) for a body that must be refused."""
    try:
        data = json.loads(raw, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None, 400, {"error": "api.not_json"}
    if isinstance(data, dict) and "updates" in data:
        batch = data["updates"]
        if not isinstance(batch, list):
            return None, 422, {"errors": [FieldError("updates", "api.status_shape")]}
        if not batch:
            return None, 422, {"errors": [FieldError("updates", "api.updates_empty")]}
        if len(batch) > MAX_UPDATES:
            return None, 422, {"errors": [FieldError("updates", "api.updates_too_big", {"max": MAX_UPDATES})]}
        updates, errors = [], []
        for i, obj in enumerate(batch):
            update, errs = crm_status.parse_update(obj, tz, prefix=f"updates[{i}].")
            updates.append(update)
            errors.extend(errs)
    elif isinstance(data, dict) and "status" in data:
        update, errors = crm_status.parse_update(data, tz)
        updates = [update]
    elif isinstance(data, dict) and (hubspot.is_workflow_body(data)
                                     or data.keys() & set(hubspot.STATUS_PROPERTIES)):
        update, errors = crm_status.from_hubspot(data)
        updates = [update]
    elif isinstance(data, dict):
        return None, 422, {"errors": [FieldError("status", "field.required")]}
    else:
        return None, 422, {"errors": [FieldError("body", "api.status_shape")]}
    if errors:
        return None, 422, {"errors": errors}
    return updates, 0, None


class SlackDirectory:
    """The Slack user of a CRM user's email (`users.lookupByEmail`), remembered for an hour (a miss for ten
    minutes). When Slack cannot answer, the email stays unresolved for this request: the lead is claimed by
    nobody and the audit keeps the email (docs/crm-status.md). A request spends at most BUDGET seconds asking
    (each call at most CALL_TIMEOUT): a slow Slack never holds a CRM's request for long."""

    HIT_SECONDS, MISS_SECONDS, MAX_ENTRIES = 3600.0, 600.0, 10_000
    BUDGET, CALL_TIMEOUT = 5.0, 3

    def __init__(self, settings):
        self.settings = settings
        self._client = None
        self._known: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def users(self, emails: set[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        until = time.monotonic() + self.BUDGET
        for email in sorted(emails):
            with self._lock:
                known = self._known.get(email)
            if known is not None and known[1] > time.monotonic():
                out[email] = known[0]
            elif time.monotonic() < until:
                out[email] = self._lookup(email)
            else:
                out[email] = None  # out of time for this request: unresolved, as when Slack does not answer
        return out

    def _lookup(self, email: str) -> str | None:
        if not self.settings.SLACK_BOT_TOKEN:
            return None
        if self._client is None:
            self._client = make_client(self.settings)
            self._client.timeout = self.CALL_TIMEOUT
        try:
            user = self._client.users_lookupByEmail(email=email).get("user") or {}
            found = None if user.get("deleted") or user.get("is_bot") else user.get("id")
            keep = self.HIT_SECONDS if found else self.MISS_SECONDS
        except SlackApiError as exc:
            if exc.response.get("error") != "users_not_found":
                log.warning("users.lookupByEmail failed (%s): the update is applied without an owner",
                            exc.response.get("error"))
                return None
            found, keep = None, self.MISS_SECONDS
        except OSError as exc:
            log.warning("users.lookupByEmail failed (%s): the update is applied without an owner", exc)
            return None
        with self._lock:
            if len(self._known) >= self.MAX_ENTRIES:
                self._known.clear()
            self._known[email] = (found, time.monotonic() + keep)
        return found


def register(flask_app, services) -> None:
    settings = services.settings
    directory = SlackDirectory(settings)

    @flask_app.post("/hooks/status")
    def hooks_status():
        lang = settings.LANGUAGE
        raw = authorized_body(settings, settings.LEAD_WEBHOOK_TOKEN)
        if isinstance(raw, Response):
            return raw
        updates, status, problem = parse_body(raw, settings.tz)
        if problem is not None:
            return refusal(status, problem, lang)
        ctx = crm_status.Context(policy=services.policy, lost_reasons=tuple(settings.LOST_REASONS),
                                 disqualify_reasons=tuple(settings.DISQUALIFY_REASONS),
                                 marketing_channel=settings.MARKETING_CHANNEL,
                                 users_by_email=directory.users(crm_status.by_emails(updates)))
        results = services.db.transact(lambda session: crm_status.apply(session, updates, services.now(), ctx))
        if any(r.applied for r in results):
            services.notify()
        return json_answer(200, {"results": [r.answer() for r in results]})
