"""No lead's email or name in the logs at the default level, errors included (docs/failures.md)."""
from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from logsafe import FORMAT, RedactingFormatter, mask
from models.tables import Lead

EMAIL = "Secret.Person@Example.co.jp"
NAME = "Himitsu Taro"


def test_mask_hides_every_email_and_keeps_the_rest():
    assert mask(f"lead 12 <{EMAIL}> failed; x@y.z and a.b+c@d-e.example.com") == \
        "lead 12 <<email>> failed; <email> and <email>"
    assert mask("Key (email_norm)=(ken@example.com) already exists.") == "Key (email_norm)=(<email>) already exists."
    assert mask("no emails @ here, user@localhost") == "no emails @ here, user@localhost"


def test_a_database_error_with_a_traceback_is_logged_without_the_email(db):
    now = datetime.now(UTC)
    with db.begin() as s:
        s.add(Lead(email=EMAIL, email_norm=EMAIL.lower(), name=NAME, score=1, created_at=now, updated_at=now))
    with pytest.raises(IntegrityError) as caught:
        with db.begin() as s:
            s.add(Lead(email=EMAIL, email_norm=EMAIL.lower(), name=NAME, score=1, created_at=now, updated_at=now))
    assert EMAIL.lower() not in str(caught.value).split("DETAIL")[0]  # hide_parameters: no values in the SQL part
    record = logging.LogRecord("handoff", logging.ERROR, __file__, 1, "insert failed", None,
                               (type(caught.value), caught.value, caught.value.__traceback__))
    line = RedactingFormatter(FORMAT).format(record)
    assert "IntegrityError" in line
    assert EMAIL.lower() not in line.lower() and NAME not in line


def test_serving_hostile_traffic_logs_no_email_or_name(app, db, caplog):
    caplog.set_level(logging.INFO)
    body = {"email": EMAIL, "name": NAME, "score": 90, "external_id": "crm-secret"}
    barrier = threading.Barrier(10)

    def send():
        barrier.wait()
        app.post_leads(body)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    app.post_leads({**body, "external_id": "crm-other"})  # an identity conflict
    app.post_leads({"email": EMAIL, "name": NAME + "\x00", "score": 90})  # refused input
    app.post_leads({"leads": [body, {**body, "score": 1e400}]})
    app.drain()
    text = caplog.text.lower()
    assert EMAIL.lower() not in text and NAME.lower() not in text
