"""CSV import of lead history (SPEC section 5): validate every row, then load all in one transaction."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from models.leads import (SLACK_USER_RE, FieldError, LeadIn, Policy, audit, find_matches, match,
                          parse_instant, parse_lead, set_deadlines)
from models.tables import Lead

COLUMNS = ("external_id", "email", "name", "company", "title", "source", "score", "created_at", "mql_at",
           "claimed_at", "claimed_by", "contacted_at", "sql_at", "won_at", "lost_at", "lost_reason",
           "disqualified_at", "disqualify_reason")
INSTANTS = ("mql_at", "claimed_at", "contacted_at", "sql_at", "won_at", "lost_at", "disqualified_at")
AFTER_MQL = ("claimed_at", "contacted_at", "sql_at", "won_at", "lost_at", "disqualified_at")
REASON_LIMIT = 100
CHUNK = 1000
PROGRESS_EVERY = 10_000


class ImportFailed(Exception):
    def __init__(self, key: str, problems: list[tuple[int, str, str, dict]], bad_rows: int = 0):
        super().__init__(key)
        self.key, self.problems, self.bad_rows = key, problems, bad_rows


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp932"):  # Excel in Japan still writes Shift_JIS
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFailed("cli.import.encoding", [])


def parse_row(row: dict, tz: ZoneInfo) -> tuple[tuple[LeadIn, dict] | None, list[FieldError]]:
    """One CSV row to a lead and its history, or the row's errors."""
    obj = {k: v for k, v in row.items() if k in COLUMNS and v is not None and v.strip() != ""}
    score_text = obj.get("score", "").strip()
    errors: list[FieldError] = []
    if score_text:
        try:
            obj["score"] = int(score_text)
        except ValueError:
            obj["score"] = score_text  # parse_lead reports it
    lead, errs = parse_lead(obj, tz)
    errors.extend(errs)
    history: dict = {}
    for name in INSTANTS:
        if name in obj:
            value = parse_instant(obj[name], tz)
            if value is None:
                errors.append(FieldError(name, "field.datetime"))
            history[name] = value
    if "claimed_by" in obj:
        if not SLACK_USER_RE.match(obj["claimed_by"].strip()):
            errors.append(FieldError("claimed_by", "field.slack_user"))
        history["claimed_by"] = obj["claimed_by"].strip()
    for name in ("lost_reason", "disqualify_reason"):
        if name in obj:
            if len(obj[name].strip()) > REASON_LIMIT:
                errors.append(FieldError(name, "field.too_long", {"max": REASON_LIMIT}))
            history[name] = obj[name].strip()
    mql_at = history.get("mql_at")
    for name in AFTER_MQL:
        if mql_at and history.get(name) and history[name] < mql_at:
            errors.append(FieldError(name, "field.order"))
    if errors:
        return None, errors
    return (lead, history), []


def import_csv(db, path: str | Path, policy: Policy, tz: ZoneInfo, now: datetime, progress=None) -> tuple[int, int]:
    """Validate every row first; any bad row and nothing is imported. Returns (created, updated)."""
    path = Path(path)
    if not path.is_file():
        raise ImportFailed("cli.import.no_file", [])
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    if "email" not in header or "score" not in header:
        raise ImportFailed("cli.import.no_header", [])
    problems = [(1, h, "field.unknown_column", {}) for h in header if h not in COLUMNS]

    parsed: list[tuple[LeadIn, dict]] = []
    bad_rows = 1 if problems else 0
    for n, row in enumerate(reader, start=1):
        item, errors = parse_row(row, tz)
        if errors:
            bad_rows += 1
            problems.extend((reader.line_num, e.field, e.key, e.params) for e in errors)
        else:
            parsed.append(item)
        if progress and n % PROGRESS_EVERY == 0:
            progress(n)
    if problems:
        raise ImportFailed("cli.import.invalid", problems, bad_rows)

    created = updated = 0
    with db.begin() as session:
        for start in range(0, len(parsed), CHUNK):
            chunk = parsed[start:start + CHUNK]
            by_ext, by_email = find_matches(session, [lead for lead, _ in chunk])
            for item, history in chunk:
                lead = match(item, by_ext, by_email)
                if lead is None:
                    lead = Lead(email=item.email, email_norm=item.email.lower(), external_id=item.external_id,
                                source="other", score=item.score, attributes={}, created_at=item.created_at or now,
                                updated_at=now)
                    session.add(lead)
                    created += 1
                else:
                    updated += 1
                _apply(lead, item, history, policy, now)
                if lead.external_id:
                    by_ext[lead.external_id] = lead
                by_email[lead.email_norm] = lead
            session.flush()
            for item, _ in chunk:
                lead = match(item, by_ext, by_email)
                audit(session, lead.id, "import", "imported", now, file=path.name)
            if progress and (start + CHUNK) % PROGRESS_EVERY == 0:
                progress(start + CHUNK)
    return created, updated


def _apply(lead: Lead, item: LeadIn, history: dict, policy: Policy, now) -> None:
    for name in ("name", "company", "title", "source", "external_id"):
        value = getattr(item, name)
        if value is not None:
            setattr(lead, name, value)
    lead.email, lead.email_norm, lead.score, lead.updated_at = item.email, item.email.lower(), item.score, now
    if item.created_at is not None:
        lead.created_at = item.created_at
    for name, value in history.items():
        setattr(lead, name, value)
    if history.get("mql_at") is not None:
        set_deadlines(lead, policy)

