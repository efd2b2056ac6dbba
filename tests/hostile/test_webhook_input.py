"""Hostile lead webhooks: every one answered 422 naming the field, nothing stored, never a 500."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models.leads import parse_lead
from models.tables import AuditEvent, Lead, OutboxMessage
from tests.conftest import HOOK_TOKEN, JST

AUTH = {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"}
OK = '"email": "p@example.com", "score": 90'

CASES = [
    ('{"email": "p@example.com", "score": 1e400}', "score"),
    ('{"email": "p@example.com", "score": -1e400}', "score"),
    ('{"email": "p@example.com", "score": 1e308}', "score"),
    ('{"email": "p@example.com", "score": 50.5}', "score"),
    ('{%s, "created_at": "0001-01-01"}' % OK, "created_at"),
    ('{%s, "created_at": "0001-01-01T00:00:00+09:00"}' % OK, "created_at"),
    ('{%s, "created_at": "9999-12-31T23:59:59-12:00"}' % OK, "created_at"),
    ('{%s, "created_at": "1969-12-31T23:59:59Z"}' % OK, "created_at"),
    ('{%s, "name": "\\ud800"}' % OK, "name"),
    ('{"email": "p\\udfff@example.com", "score": 90}', "email"),
    ('{%s, "name": "Ken\\u0000"}' % OK, "name"),
    ('{"email": "p\\u0000@example.com", "score": 90}', "email"),
    ('{%s, "company": "a\\u001bb"}' % OK, "company"),
    ('{%s, "source": "x\\u007f"}' % OK, "source"),
    ('{%s, "attributes": {"k": "v\\u0000"}}' % OK, "attributes"),
    ('{%s, "attributes": {"k\\ud800": "v"}}' % OK, "attributes"),
    ('{"leads": [{%s}, {"email": "q@example.com", "score": 1e400}]}' % OK, "leads[1].score"),
    ('{"leads": [{%s, "external_id": "e\\u0000"}]}' % OK, "leads[0].external_id"),
]


def stored(db) -> tuple[int, int, int]:
    with db.begin() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Lead, AuditEvent, OutboxMessage))


@pytest.mark.parametrize(("body", "field"), CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)])
def test_hostile_field_is_422_naming_it_and_stores_nothing(app, db, body, field):
    status, answer = app.request("/hooks/leads", body.encode(), AUTH)
    assert status == 422, answer
    assert field in [e["field"] for e in answer["errors"]]
    assert all(e["message"] for e in answer["errors"])
    assert stored(db) == (0, 0, 0)


def test_tabs_and_newlines_and_japanese_are_fine(app, db):
    status, answer = app.post_leads({"email": "ok@example.com", "score": 90, "name": "山田\t太郎",
                                     "title": "部長\n営業", "created_at": "2026-12-01T09:00:00"})
    assert status == 201, answer


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["email", "score", "name", "created_at", "attributes", "external_id"]),
                       st.one_of(st.text(), st.floats(), st.integers(), st.none(), st.booleans(),
                                 st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))))
def test_parse_lead_never_raises_and_what_it_accepts_is_storable(obj):
    item, errors = parse_lead(obj, JST)
    assert (item is None) == bool(errors)
    if item is not None:
        for value in (item.email, item.name, item.external_id, *(item.attributes or {}).values()):
            if value is not None:
                value.encode("utf-8")  # a lone surrogate would raise here
                assert "\x00" not in value
        assert 0 <= item.score <= 100
        if item.created_at is not None:
            assert 1970 <= item.created_at.year <= 2100
        json.dumps(item.attributes or {})
