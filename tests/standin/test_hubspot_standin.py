"""The HubSpot stand-in, driven through HubSpot's official Python client (and raw HTTP where the client hides
headers and bodies): it must refuse what HubSpot refuses, the way HubSpot refuses it."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import urllib3
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsError
from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesError

from standin.hubspot import DEFAULT_TOKEN, HubSpotStandIn, client_for

ROOT = Path(__file__).resolve().parents[2]
READ = "/crm/v3/objects/contacts/batch/read"
UPDATE = "/crm/v3/objects/contacts/batch/update"
LIMIT_HEADERS = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
                 "X-HubSpot-RateLimit-Interval-Milliseconds")


@pytest.fixture(scope="module")
def server():
    with HubSpotStandIn(token=DEFAULT_TOKEN) as standin:
        yield standin


@pytest.fixture
def hs(server):
    server.reset()
    return server


@pytest.fixture
def client(hs):
    return client_for(hs)


def post(hs, path, body, token=DEFAULT_TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(hs.url + path, json=body, headers=headers, timeout=5)


def read(client, ids, properties=("firstname", "lifecyclestage"), id_property=None):
    request = BatchReadInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=i) for i in ids],
                                                 properties=list(properties), id_property=id_property)
    return client.crm.contacts.batch_api.read_with_http_info(request)


def update(client, changes: list[tuple[str, dict]]):
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=i, properties=p) for i, p in changes])
    return client.crm.contacts.batch_api.update_with_http_info(batch)


def body_of(error) -> dict:
    return json.loads(error.body)


def invalid_properties(error) -> list[dict]:
    """The list HubSpot embeds in a VALIDATION_ERROR's message."""
    message = body_of(error)["message"]
    prefix = "Property values were not valid: "
    assert message.startswith(prefix)
    return json.loads(message[len(prefix):])


# Auth ---------------------------------------------------------------------------
def test_a_wrong_or_missing_token_is_refused_with_hubspots_401(hs):
    hs.add_contact("ana@example.com")
    with pytest.raises(ContactsError) as caught:
        read(client_for(hs, token="pat-na1-wrong"), ["101"])
    assert caught.value.status == 401
    body = body_of(caught.value)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found.")
    uuid.UUID(body["correlationId"])

    bare = post(hs, READ, {"inputs": [{"id": "101"}]}, token=None)
    assert bare.status_code == 401 and bare.json()["category"] == "INVALID_AUTHENTICATION"
    assert all(h in bare.headers for h in LIMIT_HEADERS)


# Batch read -------------------------------------------------------------------
def test_batch_read_by_email_finds_mixed_case_and_reports_the_missing_with_207(hs, client):
    ana = hs.add_contact("Ana@Example.com", firstname="Ana", lifecyclestage="lead")
    data, status, _ = read(client, ["ANA@example.COM", "nobody@example.com"], id_property="email")
    assert status == 207
    assert [r.id for r in data.results] == [ana]
    props = data.results[0].properties
    assert props["firstname"] == "Ana" and props["lifecyclestage"] == "lead"
    assert props["hs_object_id"] == ana and props["createdate"] and props["lastmodifieddate"]
    assert data.status == "COMPLETE" and data.num_errors == 1
    [error] = data.errors
    assert error.category == "OBJECT_NOT_FOUND" and error.status == "error"
    assert error.context == {"ids": ["nobody@example.com"]}
    assert error.message.startswith("Could not get some CONTACT objects")

    raw = post(hs, READ, {"idProperty": "email", "inputs": [{"id": "nobody@example.com"}]}).json()
    assert raw["numErrors"] == 1 and raw["results"] == [] and raw["startedAt"] and raw["completedAt"]


def test_batch_read_by_record_id_all_found_is_200(hs, client):
    ids = [hs.add_contact(f"c{i}@example.com", firstname=f"C{i}") for i in range(3)]
    data, status, headers = read(client, ids, properties=["firstname", "jobtitle", "no_such_property"])
    assert status == 200
    assert [r.id for r in data.results] == ids
    first = data.results[0]
    assert first.properties["firstname"] == "C0"
    assert first.properties["jobtitle"] is None  # defined but empty: null
    assert "no_such_property" not in first.properties  # not defined: left out
    assert first.archived is False and first.created_at and first.updated_at
    assert headers["X-HubSpot-RateLimit-Max"] == "100"


def test_batch_read_without_properties_answers_the_default_set(hs):
    ana = hs.add_contact("ana@example.com", firstname="Ana", jobtitle="CTO")
    [result] = post(hs, READ, {"inputs": [{"id": ana}]}).json()["results"]
    assert set(result["properties"]) == {"email", "firstname", "lastname", "hs_object_id", "createdate",
                                         "lastmodifieddate"}


def test_more_than_100_inputs_are_refused(hs, client):
    too_many = [str(1000 + i) for i in range(101)]
    with pytest.raises(ContactsError) as caught:
        read(client, too_many)
    assert caught.value.status == 400 and body_of(caught.value)["category"] == "VALIDATION_ERROR"
    with pytest.raises(ContactsError) as caught:
        update(client, [(i, {"firstname": "x"}) for i in too_many])
    assert caught.value.status == 400 and body_of(caught.value)["category"] == "VALIDATION_ERROR"
    history = post(hs, READ, {"propertiesWithHistory": ["lifecyclestage"], "inputs": [{"id": str(i)} for i in range(51)]})
    assert history.status_code == 400 and "property histories is 50" in history.json()["message"]


# Batch update -----------------------------------------------------------------
def test_batch_update_writes_and_answers_200(hs, client):
    ana, ben = hs.add_contact("ana@example.com"), hs.add_contact("ben@example.com")
    data, status, _ = update(client, [(ana, {"firstname": "Ana", "hs_lead_status": "IN_PROGRESS"}),
                                      (ben, {"company": "Acme", "jobtitle": 7})])
    assert status == 200 and data.status == "COMPLETE"
    by_id = {r.id: r.properties for r in data.results}
    assert by_id[ana]["firstname"] == "Ana" and by_id[ana]["hs_lead_status"] == "IN_PROGRESS"
    assert by_id[ana]["hs_object_id"] == ana and by_id[ana]["lastmodifieddate"]
    assert hs.contact(ana)["hs_lead_status"] == "IN_PROGRESS"
    assert hs.contact(ben)["jobtitle"] == "7"  # values are strings
    assert hs.contact_by_email("BEN@example.com")["company"] == "Acme"


def test_an_empty_string_clears_a_value(hs, client):
    ana = hs.add_contact("ana@example.com", jobtitle="CTO")
    update(client, [(ana, {"jobtitle": ""})])
    assert "jobtitle" not in hs.contact(ana)
    data, _, _ = read(client, [ana], properties=["jobtitle"])
    assert data.results[0].properties["jobtitle"] is None


def test_duplicate_ids_refuse_the_whole_batch(hs, client):
    ana = hs.add_contact("ana@example.com", firstname="Ana")
    with pytest.raises(ContactsError) as caught:
        update(client, [(ana, {"firstname": "One"}), (ana, {"lastname": "Two"})])
    body = body_of(caught.value)
    assert caught.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["message"] == f"Duplicate IDs found in batch input: [{ana}]. IDs must be unique"
    assert body["context"] == {"ids": [ana]}
    assert hs.contact(ana)["firstname"] == "Ana"


def test_an_unknown_property_refuses_the_whole_batch_and_changes_nothing(hs, client):
    ana, ben = hs.add_contact("ana@example.com", firstname="Ana"), hs.add_contact("ben@example.com")
    with pytest.raises(ContactsError) as caught:
        update(client, [(ana, {"firstname": "Changed"}), (ben, {"foo": "bar"})])
    assert caught.value.status == 400
    [invalid] = invalid_properties(caught.value)
    assert invalid["isValid"] is False and invalid["name"] == "foo"
    assert invalid["error"] == "PROPERTY_DOESNT_EXIST" and invalid["message"] == 'Property "foo" does not exist'
    body = body_of(caught.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["context"] == {"propertyName": ["foo"]}
    assert hs.contact(ana)["firstname"] == "Ana"  # nothing written, the valid input included


def test_an_invalid_option_and_a_read_only_property_are_refused(hs, client):
    ana = hs.add_contact("ana@example.com", hs_lead_status="NEW")
    with pytest.raises(ContactsError) as caught:
        update(client, [(ana, {"hs_lead_status": "HOT", "lifecyclestage": "Lead", "hubspotscore": "50"})])
    problems = {p["name"]: p for p in invalid_properties(caught.value)}
    assert problems["hs_lead_status"]["error"] == "INVALID_OPTION"
    assert problems["hs_lead_status"]["message"].startswith("HOT was not one of the allowed options: [NEW, OPEN")
    assert problems["lifecyclestage"]["error"] == "INVALID_OPTION"  # values, not labels
    assert problems["hubspotscore"]["error"] == "READ_ONLY_VALUE"
    assert hs.contact(ana)["hs_lead_status"] == "NEW"
    with pytest.raises(ContactsError) as caught:
        update(client, [(ana, {"email": "not-an-email"})])
    assert invalid_properties(caught.value)[0]["error"] == "INVALID_EMAIL"


def test_an_unknown_id_fails_only_its_own_item_with_207(hs, client):
    ana = hs.add_contact("ana@example.com")
    data, status, _ = update(client, [(ana, {"firstname": "Ana"}), ("999999", {"firstname": "Ghost"})])
    assert status == 207
    assert [r.id for r in data.results] == [ana]
    assert data.errors[0].category == "OBJECT_NOT_FOUND" and data.errors[0].context == {"ids": ["999999"]}
    assert hs.contact(ana)["firstname"] == "Ana"


def test_taking_another_contacts_email_is_a_conflict(hs, client):
    hs.add_contact("ana@example.com")
    ben = hs.add_contact("ben@example.com")
    with pytest.raises(ContactsError) as caught:
        update(client, [(ben, {"email": "ANA@example.com"})])
    assert caught.value.status == 409 and body_of(caught.value)["category"] == "CONFLICT"
    with pytest.raises(ValueError):
        hs.add_contact("Ana@Example.com")


def test_lifecyclestage_only_moves_forward_unless_cleared_first(hs, client):
    ana = hs.add_contact("ana@example.com", lifecyclestage="lead")
    update(client, [(ana, {"lifecyclestage": "customer"})])
    assert hs.contact(ana)["lifecyclestage"] == "customer"
    data, status, _ = update(client, [(ana, {"lifecyclestage": "salesqualifiedlead"})])
    assert status == 200  # HubSpot answers success ...
    assert data.results[0].properties["lifecyclestage"] == "customer"  # ... and keeps the later stage
    assert hs.contact(ana)["lifecyclestage"] == "customer"
    update(client, [(ana, {"lifecyclestage": ""})])
    update(client, [(ana, {"lifecyclestage": "salesqualifiedlead"})])
    assert hs.contact(ana)["lifecyclestage"] == "salesqualifiedlead"


# Properties API -----------------------------------------------------------------
def test_a_property_group_and_a_property_are_created_once_then_the_property_is_writable(hs, client):
    groups, core = client.crm.properties.groups_api, client.crm.properties.core_api
    group = groups.create("contacts", PropertyGroupCreate(name="handoff", label="Handoff"))
    assert group.name == "handoff" and group.label == "Handoff"
    with pytest.raises(PropertiesError) as caught:
        groups.create("contacts", PropertyGroupCreate(name="handoff", label="Handoff"))
    assert caught.value.status == 409 and body_of(caught.value)["category"] == "OBJECT_ALREADY_EXISTS"
    assert groups.get_by_name("contacts", "handoff").label == "Handoff"
    with pytest.raises(PropertiesError) as caught:
        groups.get_by_name("contacts", "nope")
    assert caught.value.status == 404

    spec = PropertyCreate(name="handoff_status", label="Handoff status", type="enumeration", field_type="select",
                          group_name="handoff", options=[OptionInput(label="Waiting", value="waiting", hidden=False),
                                                         OptionInput(label="Claimed", value="claimed", hidden=False)])
    created = core.create("contacts", spec)
    assert created.name == "handoff_status" and [o.value for o in created.options] == ["waiting", "claimed"]
    with pytest.raises(PropertiesError) as caught:
        core.create("contacts", spec)
    assert caught.value.status == 409 and body_of(caught.value)["category"] == "OBJECT_ALREADY_EXISTS"
    assert core.get_by_name("contacts", "handoff_status").group_name == "handoff"
    assert "handoff_status" in {p.name for p in core.get_all("contacts").results}

    ana = hs.add_contact("ana@example.com")
    update(client, [(ana, {"handoff_status": "claimed"})])
    assert hs.contact(ana)["handoff_status"] == "claimed"
    with pytest.raises(ContactsError) as caught:
        update(client, [(ana, {"handoff_status": "lost"})])
    assert invalid_properties(caught.value)[0]["error"] == "INVALID_OPTION"

    hs.reset()
    assert hs.property("handoff_status") is None
    with pytest.raises(ContactsError):
        update(client, [(hs.add_contact("ben@example.com"), {"handoff_status": "claimed"})])


def test_property_creation_checks_its_fields(hs, client):
    core = client.crm.properties.core_api
    for spec in (PropertyCreate(name="x_note", label="Note", type="string", field_type="text", group_name="nope"),
                 PropertyCreate(name="x_pick", label="Pick", type="enumeration", field_type="select",
                                group_name="contactinformation"),
                 PropertyCreate(name="X Bad", label="Bad", type="string", field_type="text",
                                group_name="contactinformation")):
        with pytest.raises(PropertiesError) as caught:
            core.create("contacts", spec)
        assert caught.value.status == 400 and body_of(caught.value)["category"] == "VALIDATION_ERROR"
    missing = requests.post(hs.url + "/crm/v3/properties/contacts", json={"name": "x_note"},
                            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}, timeout=5)
    assert missing.status_code == 400 and "label" in missing.json()["message"]
    with pytest.raises(PropertiesError) as caught:
        core.create("contacts", PropertyCreate(name="email", label="Email", type="string", field_type="text",
                                               group_name="contactinformation"))
    assert caught.value.status == 409
    with pytest.raises(PropertiesError) as caught:
        core.get_by_name("contacts", "x_note")
    assert caught.value.status == 404


# Rate limit -----------------------------------------------------------------
def test_the_rate_limit_answers_hubspots_429_and_counts_refused_requests(hs, client):
    hs.limit(requests=5, seconds=0.5)
    answers = [post(hs, READ, {"inputs": []}) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    refused = answers[5]
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "5"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "500"
    assert "Retry-After" not in refused.headers  # HubSpot documents none
    body = refused.json()
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["status"] == "error" and body["correlationId"]
    with pytest.raises(ContactsError) as caught:
        read(client, ["101"])
    assert caught.value.status == 429 and caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert hs.throttled == 3 and hs.count(429) == 3
    assert hs.max_in_window(0.5) == 8  # the refused ones count too

    time.sleep(0.5)
    assert post(hs, READ, {"inputs": []}).status_code == 200  # the window rolled on


def test_max_in_window_measures_a_paced_client(hs):
    for _ in range(3):
        post(hs, READ, {"inputs": []})
    time.sleep(0.2)
    for _ in range(2):
        post(hs, READ, {"inputs": []})
    assert hs.max_in_window(0.15) == 3
    assert hs.max_in_window(5.0) == 5


# Misbehaving ------------------------------------------------------------------
def test_injected_faults_answer_once_each_and_only_where_asked(hs, client):
    ana = hs.add_contact("ana@example.com")
    hs.inject_429(1, retry_after=2)
    injected = post(hs, READ, {"inputs": [{"id": ana}]})
    assert injected.status_code == 429 and injected.headers["Retry-After"] == "2"
    assert injected.json()["policyName"] == "TEN_SECONDLY_ROLLING"

    hs.fail_next(2, status=502, path=UPDATE)
    assert read(client, [ana])[1] == 200  # another path is not affected
    for _ in range(2):
        with pytest.raises(ContactsError) as caught:
            update(client, [(ana, {"firstname": "Ana"})])
        assert caught.value.status == 502 and body_of(caught.value)["status"] == "error"
    assert update(client, [(ana, {"firstname": "Ana"})])[1] == 200
    assert [c.status for c in hs.calls_to("/batch/update")] == [502, 502, 200]


def test_down_hangs_up_without_an_answer_until_up(hs, client):
    hs.down()
    with pytest.raises(requests.ConnectionError):
        post(hs, READ, {"inputs": []})
    with pytest.raises(urllib3.exceptions.HTTPError):
        read(client, ["101"])
    assert {c.status for c in hs.calls} == {0}
    hs.up()
    assert read(client_for(hs), ["101"])[1] == 207


def test_slow_down_delays_the_answer(hs):
    hs.slow_down(READ, 0.1)
    started = time.monotonic()
    assert post(hs, READ, {"inputs": []}).status_code == 200
    assert time.monotonic() - started >= 0.1


def test_calls_are_recorded_and_can_be_waited_for(hs, client):
    ana = hs.add_contact("ana@example.com")
    update(client, [(ana, {"firstname": "Ana"})])
    requests.get(hs.url + "/crm/v3/properties/contacts/firstname?archived=false",
                 headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}, timeout=5)
    assert hs.wait_for(lambda calls: len(calls) == 2, timeout=1)
    first, second = hs.calls
    assert (first.method, first.path, first.status) == ("POST", UPDATE, 200)
    assert first.body == {"inputs": [{"id": ana, "properties": {"firstname": "Ana"}}]}
    assert (second.method, second.query, second.status) == ("GET", {"archived": "false"}, 200)
    assert first.at <= second.at
    assert hs.calls_to("/properties/contacts/firstname") == [second]
    assert not hs.wait_for(lambda calls: len(calls) > 2, timeout=0.05)
    listed = requests.get(hs.url + "/_standin/calls", timeout=5).json()["calls"]
    assert [c["status"] for c in listed] == [200, 200]


def test_a_body_that_is_not_json_is_refused(hs):
    answer = requests.post(hs.url + UPDATE, data=b"{not json", timeout=5,
                           headers={"Authorization": f"Bearer {DEFAULT_TOKEN}", "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["message"].startswith("Invalid input JSON on line 1")


# Running alone ------------------------------------------------------------------
def test_the_module_imports_without_the_hubspot_client():
    code = "import sys; sys.modules['hubspot'] = None; import standin.hubspot"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)


def test_main_prints_its_url_and_serves():
    process = subprocess.Popen([sys.executable, "-m", "standin.hubspot", "--port", "0", "--token", "X"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        answer = requests.get(url + "/crm/v3/properties/contacts/groups", headers={"Authorization": "Bearer X"},
                              timeout=5)
        assert answer.status_code == 200 and "contactinformation" in {g["name"] for g in answer.json()["results"]}
    finally:
        process.terminate()
        process.wait(timeout=5)
