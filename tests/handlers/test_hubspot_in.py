"""POST /hooks/leads takes the bodies of HubSpot's workflow "Send a webhook" action (docs/hubspot.md)."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models.tables import Lead
from tests.conftest import HOOK_TOKEN, make_settings

AUTH = {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"}

# "Include all contact properties": every property as {"value": …, "versions": […]}, numbers as strings.
ALL_PROPERTIES = {
    "vid": 3201, "canonical-vid": 3201, "portal-id": 4242001, "is-contact": True,
    "properties": {
        "email": {"value": "Aiko.Sato@Example.co.jp", "versions": [{"value": "Aiko.Sato@Example.co.jp"}]},
        "firstname": {"value": "Aiko"}, "lastname": {"value": "Sato"}, "company": {"value": "Sato Kogyo"},
        "jobtitle": {"value": "CTO"}, "hubspotscore": {"value": "72"},
        "hs_analytics_source": {"value": "ORGANIC_SEARCH"}, "createdate": {"value": "1764547200000"},
        "lifecyclestage": {"value": "marketingqualifiedlead"},
    },
}
# Chosen properties, flat, with the record id.
CHOSEN = {"hs_object_id": "3202", "email": "ken@example.com", "firstname": "Ken", "lastname": "",
          "hubspotscore": "45", "hs_analytics_source": "PAID_SOCIAL", "createdate": "2026-11-30T01:00:00Z"}


@pytest.fixture
def web(db, slack):
    from runtime import build_runtime

    rt = build_runtime(make_settings(db.url, slack.url), db=db)
    return rt.http.test_client()


def post(web, body):
    return web.post("/hooks/leads", data=json.dumps(body), headers=AUTH)


def stored(db, email) -> Lead:
    with db.begin() as s:
        return s.scalars(select(Lead).where(Lead.email_norm == email)).one()


def test_all_contact_properties_become_a_lead(web, db):
    r = post(web, ALL_PROPERTIES)
    assert r.status_code == 201 and r.json["status"] == "mql" and r.json["created"] is True
    lead = stored(db, "aiko.sato@example.co.jp")
    assert (lead.external_id, lead.name, lead.company, lead.title, lead.score, lead.source) == (
        "3201", "Aiko Sato", "Sato Kogyo", "CTO", 72, "organic_search")
    assert lead.created_at.isoformat() == "2025-12-01T00:00:00+00:00"  # epoch milliseconds
    r = post(web, ALL_PROPERTIES)  # the workflow sent it again: the same lead, one card
    assert r.status_code == 200 and r.json["created"] is False


def test_chosen_properties_with_the_record_id(web, db):
    r = post(web, CHOSEN)
    assert r.status_code == 201 and r.json["status"] == "new"
    lead = stored(db, "ken@example.com")
    assert (lead.external_id, lead.name, lead.score, lead.source) == ("3202", "Ken", 45, "paid_social")
    assert lead.created_at.isoformat() == "2026-11-30T01:00:00+00:00"
    r = post(web, {**CHOSEN, "hubspotscore": "88"})  # the score crossed the threshold in HubSpot
    assert r.status_code == 200 and r.json["status"] == "mql"


def test_scores_beyond_the_scale_are_held_within_it_and_another_score_property_can_be_read(db, slack):
    from runtime import build_runtime

    web = build_runtime(make_settings(db.url, slack.url, HUBSPOT_SCORE_PROPERTY="lead_score_2025"), db=db)
    web = web.http.test_client()
    r = post(web, {**CHOSEN, "hubspotscore": "5", "lead_score_2025": "140.6"})  # the new scoring tool's property
    assert r.status_code == 201 and r.json["status"] == "mql" and stored(db, "ken@example.com").score == 100
    r = post(web, {"email": "neg@example.com", "lead_score_2025": "-12"})  # flat, no hs_object_id: still HubSpot's
    assert r.status_code == 201 and stored(db, "neg@example.com").score == 0
    r = post(web, {"email": "none@example.com", "lead_score_2025": "n/a"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "lead_score_2025"


@pytest.mark.parametrize("body, field", [
    ({**CHOSEN, "hubspotscore": "high"}, "hubspotscore"),
    ({k: v for k, v in CHOSEN.items() if k != "hubspotscore"}, "hubspotscore"),
    ({**CHOSEN, "email": "not-an-email"}, "email"),
    ({**CHOSEN, "createdate": "yesterday"}, "createdate"),
    ({**ALL_PROPERTIES, "properties": {**ALL_PROPERTIES["properties"], "hubspotscore": {"value": ""}}},
     "properties.hubspotscore"),
])
def test_bad_values_are_422_naming_hubspots_property_and_store_nothing(web, db, body, field):
    r = post(web, body)
    assert r.status_code == 422 and [e["field"] for e in r.json["errors"]] == [field]
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Lead)) == 0


def test_a_body_of_neither_shape_names_the_accepted_shapes(web, db):
    r = post(web, {"contact": {"email": "x@example.com"}})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "body"
    assert "HubSpot workflow" in r.json["errors"][0]["message"] and "leads" in r.json["errors"][0]["message"]


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(props=st.dictionaries(st.sampled_from(["email", "firstname", "lastname", "hubspotscore", "createdate",
                                               "hs_analytics_source", "company", "jobtitle", "hs_object_id"]),
                             st.one_of(st.none(), st.text(max_size=30), st.integers(), st.booleans(),
                                       st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=2))))
def test_any_workflow_body_is_answered_without_a_500(web, props):
    body = {"hs_object_id": "1", **props} if "hs_object_id" not in props else props
    assert post(web, body).status_code in (200, 201, 422)
    assert post(web, {"vid": 1, "properties": {k: {"value": v} for k, v in props.items()}}).status_code in (
        200, 201, 422)
