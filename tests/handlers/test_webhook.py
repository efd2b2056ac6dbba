"""POST /hooks/leads: every refusal docs/http.md lists, fuzzed bodies, dedupe, batches."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models.tables import AuditEvent, Lead, OutboxMessage
from tests.conftest import HOOK_TOKEN, make_settings

AUTH = {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def web(db, slack):
    """The WSGI app without serving threads: fast enough for property tests."""
    from runtime import build_runtime

    rt = build_runtime(make_settings(db.url, slack.url), db=db)
    return rt.http.test_client()


def count(db, model=Lead) -> int:
    with db.begin() as s:
        return s.scalar(select(func.count()).select_from(model))


def post(web, body, headers=AUTH):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return web.post("/hooks/leads", data=data, headers=headers)


def test_new_lead_is_201_and_update_is_200(web, db):
    r = post(web, {"email": "Ken@Example.com", "score": 10, "name": "Ken"})
    assert r.status_code == 201 and r.json == {"id": 1, "status": "new", "created": True}
    r = post(web, {"email": "ken@example.COM", "score": 20, "company": "Kogyo"})
    assert r.status_code == 200 and r.json == {"id": 1, "status": "new", "created": False}
    with db.begin() as s:
        lead = s.get(Lead, 1)
        assert (lead.name, lead.company, lead.score) == ("Ken", "Kogyo", 20)


def test_external_id_wins_over_email(web, db):
    post(web, {"email": "a@example.com", "score": 10, "external_id": "hs-1"})
    r = post(web, {"email": "new-address@example.com", "score": 10, "external_id": "hs-1"})
    assert r.status_code == 200 and r.json["id"] == 1
    # One email is one lead: another CRM record with that email is refused, naming the lead it would clash with.
    r = post(web, {"email": "New-Address@example.com", "score": 10, "external_id": "hs-2"})
    assert r.status_code == 422
    assert r.json["errors"][0]["field"] == "external_id" and "1" in r.json["errors"][0]["message"]
    # A known external_id moving to an email another lead has: refused too, nothing changed.
    post(web, {"email": "b@example.com", "score": 10, "external_id": "hs-3"})
    r = post(web, {"leads": [{"email": "c@example.com", "score": 10},
                             {"email": "B@example.com", "score": 50, "external_id": "hs-1"}]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "leads[1].email"
    assert count(db) == 2
    with db.begin() as s:
        assert s.get(Lead, 1).email_norm == "new-address@example.com" and s.get(Lead, 1).score == 10


def test_same_lead_twice_is_one_lead_one_card(web, db):
    for _ in range(2):
        post(web, {"email": "twice@example.com", "score": 90, "external_id": "x-1"})
    assert count(db) == 1
    assert count(db, OutboxMessage) == 1


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": HOOK_TOKEN}, {"Authorization": f"Basic {HOOK_TOKEN}"},
])
def test_401_without_the_right_token(web, db, headers):
    r = post(web, {"email": "a@example.com", "score": 90}, headers)
    assert r.status_code == 401 and "token" in r.json["error"]
    assert count(db) == 0


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2", b'{"score": NaN, "email": "a@b.co"}'])
def test_400_for_a_body_that_is_not_json(web, db, body):
    r = post(web, body)
    assert r.status_code == 400 and r.json["error"]
    assert count(db) == 0


def test_413_over_one_megabyte(web, db):
    big = json.dumps({"email": "a@example.com", "score": 90, "name": "x" * (1024 * 1024)}).encode()
    r = post(web, big)
    assert r.status_code == 413
    assert count(db) == 0


@pytest.mark.parametrize("body, field", [
    ({"score": 70}, "email"),
    ({"email": "not-an-email", "score": 70}, "email"),
    ({"email": "a@example.com"}, "score"),
    ({"email": "a@example.com", "score": 101}, "score"),
    ({"email": "a@example.com", "score": -1}, "score"),
    ({"email": "a@example.com", "score": "70"}, "score"),
    ({"email": "a@example.com", "score": 70.5}, "score"),
    ({"email": "a@example.com", "score": True}, "score"),
    ({"email": "a@example.com", "score": 70, "created_at": "yesterday"}, "created_at"),
    ({"email": "a@example.com", "score": 70, "attributes": ["x"]}, "attributes"),
    ({"email": "a@example.com", "score": 70, "attributes": {"k": {"nested": 1}}}, "attributes"),
    ({"email": "a@example.com", "score": 70, "name": ["x"]}, "name"),
    ({"email": "a@example.com", "score": 70, "company": "x" * 201}, "company"),
    ([{"email": "a@example.com", "score": 70}], "body"),
    ({"leads": {}}, "leads"),
    ({"leads": []}, "leads"),
    ({"leads": [{"email": "a@example.com", "score": 70}] * 501}, "leads"),
])
def test_422_names_the_field(web, db, body, field):
    r = post(web, body)
    assert r.status_code == 422, r.json
    assert field in [e["field"] for e in r.json["errors"]]
    assert all(e["message"] for e in r.json["errors"])
    assert count(db) == 0


def test_batch_is_all_or_nothing_and_names_the_row(web, db):
    body = {"leads": [{"email": f"p{i}@example.com", "score": 70} for i in range(5)]}
    body["leads"][3]["score"] = 500
    r = post(web, body)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "leads[3].score"
    assert count(db) == 0
    body["leads"][3]["score"] = 50
    r = post(web, body)
    assert r.status_code == 201 and r.json["created"] == 5
    assert [x["status"] for x in r.json["leads"]] == ["mql", "mql", "mql", "new", "mql"]
    assert count(db, OutboxMessage) == 4


def test_batch_with_the_same_lead_twice(web, db):
    r = post(web, {"leads": [{"email": "d@example.com", "score": 40}, {"email": "D@example.com", "score": 80}]})
    assert r.status_code == 201
    assert [x["created"] for x in r.json["leads"]] == [True, False]
    assert count(db) == 1 and count(db, OutboxMessage) == 1


def test_created_at_without_offset_is_local_time(web, db):
    post(web, {"email": "t@example.com", "score": 10, "created_at": "2026-11-24T09:00:00"})
    with db.begin() as s:
        assert s.get(Lead, 1).created_at.isoformat() == "2026-11-24T00:00:00+00:00"


def test_numeric_external_id_is_accepted(web, db):
    assert post(web, {"email": "n@example.com", "score": 10, "external_id": 12345}).status_code == 201
    assert post(web, {"email": "n@example.com", "score": 20, "external_id": "12345"}).status_code == 200


def test_webhook_without_a_configured_token_refuses(db, slack):
    from runtime import build_runtime

    rt = build_runtime(make_settings(db.url, slack.url, LEAD_WEBHOOK_TOKEN=""), db=db)
    r = rt.http.test_client().post("/hooks/leads", json={"email": "a@example.com", "score": 90})
    assert r.status_code == 503 and "LEAD_WEBHOOK_TOKEN" in r.json["error"]


def test_mql_is_audited(web, db):
    post(web, {"email": "au@example.com", "score": 95})
    with db.begin() as s:
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["created", "mql"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25)
lead_like = st.fixed_dictionaries({}, optional={
    "email": st.one_of(st.text(max_size=40), st.just("a@example.com"), st.integers()),
    "score": st.one_of(st.integers(-5, 105), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=3), st.none()),
    "name": json_values, "company": json_values, "created_at": json_values, "attributes": json_values,
    "external_id": json_values, "source": json_values,
})


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, lead_like, st.fixed_dictionaries({"leads": st.lists(lead_like, max_size=4)})))
def test_fuzzed_bodies_never_500_and_refusals_store_nothing(web, db, body):
    before = count(db)
    r = post(web, body)
    assert r.status_code in (200, 201, 422), (r.status_code, r.data[:200])
    if r.status_code == 422:
        assert count(db) == before
        assert all({"field", "message"} <= set(e) for e in r.json["errors"])


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_fuzzed_bytes_never_500(web, db, raw):
    before = count(db)
    r = post(web, raw)
    assert r.status_code < 500
    if r.status_code >= 400:
        assert count(db) == before
