"""The Salesforce stand-in (standin/salesforce.py), driven through simple-salesforce, the client Handoff uses, and
through requests where the client hides statuses, headers or the token endpoint: it must refuse what Salesforce
refuses, the way Salesforce refuses it."""
from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from standin import tls
from standin.salesforce import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    HANDOFF_FIELDS,
    SalesforceStandIn,
    id18,
    normalize_id,
)

ROOT = Path(__file__).resolve().parents[2]
V = "/services/data/v60.0"
COLLECTIONS = "composite/sobjects"
UPSERT = "composite/sobjects/Task/Handoff_Event_Id__c"


@pytest.fixture(scope="module")
def server():
    with SalesforceStandIn() as standin:
        yield standin


@pytest.fixture
def sf_org(server):
    server.reset()
    return server


@pytest.fixture
def http(sf_org):
    """What Handoff does: a session that trusts the stand-in's CA. trust_env is off because requests lets
    REQUESTS_CA_BUNDLE from the environment replace Session.verify."""
    with requests.Session() as session:
        session.verify = sf_org.ca_file
        session.trust_env = False
        yield session


def get_token(org, http, **form) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET, **form}
    return http.post(org.url + "/services/oauth2/token", data=data, timeout=5)


@pytest.fixture
def sf(sf_org, http) -> Salesforce:
    token = get_token(sf_org, http).json()["access_token"]
    return Salesforce(instance_url=sf_org.url, session_id=token, version="60.0", session=http)


def refusal(caught) -> list[dict]:
    return caught.value.content


def update(sf, *records, all_or_none=False):
    return sf.restful(COLLECTIONS, method="PATCH", json={"allOrNone": all_or_none, "records": list(records)})


def lead(record_id, **values):
    return {"attributes": {"type": "Lead"}, "id": record_id, **values}


def codes(result) -> list[str]:
    return [e["statusCode"] for e in result["errors"]]


def grant_through_http(sf, user_id, fields, edit=True) -> str:
    """Grant fields (Object.Field) to a user the way Handoff's setup does: permission set, field permissions,
    assignment, all through the REST API."""
    permission_set = sf.PermissionSet.create({"Name": "Handoff_Test", "Label": "Handoff Test"})["id"]
    for name in fields:
        sobject = name.split(".")[0]
        sf.FieldPermissions.create({"ParentId": permission_set, "SobjectType": sobject, "Field": name,
                                    "PermissionsRead": True, "PermissionsEdit": edit})
    sf.PermissionSetAssignment.create({"AssigneeId": user_id, "PermissionSetId": permission_set})
    return permission_set


# Token --------------------------------------------------------------------------------
def test_the_client_credentials_flow_answers_like_salesforce(sf_org, http):
    answer = get_token(sf_org, http)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"}
    assert body["instance_url"] == sf_org.url and body["token_type"] == "Bearer" and body["scope"] == "api"
    org, user = body["id"].removeprefix(sf_org.url + "/id/").split("/")
    assert org.startswith("00D") and len(org) == 18 and user == sf_org.integration_user_id
    assert user.startswith("005") and body["issued_at"].isdigit()
    assert abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    assert body["access_token"].startswith(org[:15] + "!")

    basic = http.post(sf_org.url + "/services/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), timeout=5)
    assert basic.status_code == 200 and basic.json()["access_token"] != body["access_token"]

    wrong_secret = get_token(sf_org, http, client_secret="nope")
    assert (wrong_secret.status_code, wrong_secret.json()) == (
        400, {"error": "invalid_client", "error_description": "invalid client credentials"})
    wrong_client = get_token(sf_org, http, client_id="someone-else")
    assert (wrong_client.status_code, wrong_client.json()["error"]) == (400, "invalid_client_id")
    password = get_token(sf_org, http, grant_type="password")
    assert (password.status_code, password.json()) == (
        400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
    assert sf_org.usage == 0  # the token endpoint is not counted
    recorded = sf_org.calls_to("/oauth2/token")[0]
    assert recorded.body["client_secret"] == "***" and recorded.status == 200


def test_a_client_that_does_not_trust_the_test_ca_is_refused(sf_org, tmp_path):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(sf_org.url + "/services/data", timeout=5)  # the system's CAs only
    other = tls.TestCA(tmp_path / "other")  # another stand-in's CA
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(sf_org.url + "/services/data", verify=str(other.ca_file), timeout=5)
    trusted = requests.get(sf_org.url + "/services/data", verify=sf_org.ca_file, timeout=5)
    assert trusted.status_code == 200
    assert {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"} in trusted.json()


def test_the_test_ca_makes_a_server_certificate_for_loopback(tmp_path):
    from cryptography import x509

    ca = tls.TestCA(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"ca.pem", "server.pem", "server-key.pem"}
    server_cert = x509.load_pem_x509_certificates(ca.cert_file.read_bytes())[0]
    names = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert (server_cert.not_valid_after_utc - server_cert.not_valid_before_utc).days == 30
    assert ca.server_context().minimum_version.name == "TLSv1_2"


# Query ---------------------------------------------------------------------------------
def test_format_soql_escapes_quotes_and_backslashes_and_the_stand_in_reads_them(sf_org, sf):
    tricky = ["o'brien@example.com", "back\\slash@example.com", 'quo"te@example.com', "both\\'@example.com"]
    ids = {email: sf_org.add_lead(email) for email in tricky}
    sf_org.add_lead("plain@example.com")
    for email in tricky:
        found = sf.query(format_soql("SELECT Id, Email FROM Lead WHERE Email = {}", email))
        assert [r["Id"] for r in found["records"]] == [ids[email]], email
    both = sf.query(format_soql("SELECT Id FROM Lead WHERE Email IN {}", tricky[:2]))
    assert {r["Id"] for r in both["records"]} == {ids[tricky[0]], ids[tricky[1]]}

    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Lead WHERE Email = 'o'brien@example.com'")  # built by hand, not escaped
    [error] = refusal(caught)
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:38" in error["message"] and error["message"].endswith("unexpected token: 'brien'")


def test_an_injection_attempt_escaped_finds_nothing_and_unescaped_finds_everyone(sf_org, sf):
    sf_org.add_lead("ana@example.com")
    sf_org.add_lead(None)  # != matches nulls too, as SOQL's does
    attack = "x' OR Email != '"
    escaped = sf.query(format_soql("SELECT Id FROM Lead WHERE Email = {}", attack))
    assert escaped["totalSize"] == 0 and escaped["records"] == []
    naive = sf.query(f"SELECT Id FROM Lead WHERE Email = '{attack}'")
    assert naive["totalSize"] == 2  # what the stand-in guards Handoff against


def test_escape_sequences_follow_the_soql_reference(sf_org, sf):
    sf_org.add_lead("ren\u00e9@example.com")
    sf_org.add_lead("line\nbreak@example.com")
    sf_org.add_lead("100%@example.com")
    assert sf.query("SELECT Id FROM Lead WHERE Email = 'ren\\u00e9@example.com'")["totalSize"] == 1
    assert sf.query("SELECT Id FROM Lead WHERE Email = 'line\\Nbreak@example.com'")["totalSize"] == 1
    assert sf.query("SELECT Id FROM Lead WHERE Email LIKE '100\\%@%'")["totalSize"] == 1
    assert sf.query("SELECT Id FROM Lead WHERE Email LIKE '1_0%'")["totalSize"] == 1
    for bad in ("'ren\\d@example.com'", "'100\\%@example.com'", "'x\\u12'"):
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.query(f"SELECT Id FROM Lead WHERE Email = {bad}")
        assert refusal(caught)[0]["errorCode"] == "MALFORMED_QUERY", bad


def test_email_comparison_is_case_insensitive(sf_org, sf):
    ana = sf_org.add_lead("Ana.Silva@Example.COM")
    for written in ("ana.silva@example.com", "ANA.SILVA@EXAMPLE.COM"):
        assert [r["Id"] for r in sf.query(format_soql("SELECT Id FROM Lead WHERE Email = {}", written))["records"]
                ] == [ana]
    assert sf.query("SELECT Id FROM Lead WHERE Email IN ('ANA.silva@example.com')")["totalSize"] == 1


def test_a_uri_over_16384_bytes_gets_salesforces_edge_refusal(sf_org, sf, http):
    long_query = format_soql("SELECT Id FROM Lead WHERE Email IN {}", [f"user{i}@example.com" for i in range(900)])
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query(long_query)
    assert caught.value.status == 414
    assert caught.value.content == "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>"
    used = sf_org.usage
    raw = http.get(sf_org.url + f"{V}/query", params={"q": long_query}, timeout=5,
                   headers={"Authorization": "Bearer whatever"})
    assert raw.status_code == 414 and raw.headers["Content-Type"].startswith("text/html")
    assert "Sforce-Limit-Info" not in raw.headers and sf_org.usage == used  # the edge answered, not the API
    assert sf.query(format_soql("SELECT Id FROM Lead WHERE Email IN {}", ["a@example.com"] * 50))["totalSize"] == 0


def test_unknown_objects_fields_and_bad_filters_are_refused(sf_org, sf):
    cases = [
        ("SELECT Id FROM Leed", "INVALID_TYPE", "sObject type 'Leed' is not supported."),
        ("SELECT Id, Emial FROM Lead", "INVALID_FIELD", "No such column 'Emial' on entity 'Lead'."),
        ("SELECT Id FROM Lead WHERE LastModifiedDate > '2024-01-01'", "INVALID_FIELD",
         "value of filter criterion for field 'LastModifiedDate' must be of type dateTime"),
        ("SELECT Id FROM Lead WHERE IsConverted = 'false'", "INVALID_FIELD", "must be of type boolean"),
        ("SELECT Id FROM Lead WHERE Email = 'a' AND Status = 'b' OR Company = 'c'", "MALFORMED_QUERY",
         "unexpected token: 'OR'"),
        ("SELECT Id, Id FROM Lead", "MALFORMED_QUERY", "duplicate field selected: Id"),
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "ERROR at Row:1:Column:"),
        ("SELECT FROM Lead", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
    ]
    for soql, code, text in cases:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.query(soql)
        [error] = refusal(caught)
        assert error["errorCode"] == code and text in error["message"], soql
    with pytest.raises(SalesforceGeneralError) as caught:  # over the URI limit long before SOQL's 100,000 characters
        sf.query("SELECT Id FROM Lead WHERE Email = '" + "x" * 100_001 + "'")
    assert caught.value.status == 414


def test_query_answers_in_salesforces_shape_with_order_limit_and_pages(sf_org, sf):
    for i in range(2_001):
        sf_org.add_lead(f"lead{i:04d}@example.com", FirstName=None if i % 2 else f"F{i:04d}")
    first = sf.query("SELECT Id, Email FROM Lead")
    assert first["totalSize"] == 2_001 and first["done"] is False and len(first["records"]) == 2_000
    record = first["records"][0]
    assert list(record) == ["attributes", "Id", "Email"]
    assert record["attributes"] == {"type": "Lead", "url": f"{V}/sobjects/Lead/{record['Id']}"}
    assert first["nextRecordsUrl"].startswith(f"{V}/query/01g")
    assert len(sf.query_all("SELECT Id FROM Lead")["records"]) == 2_001

    ordered = sf.query("SELECT FirstName, Email FROM Lead ORDER BY FirstName DESC NULLS LAST, Email LIMIT 3")
    assert [r["FirstName"] for r in ordered["records"]] == ["F2000", "F1998", "F1996"]
    nulls_first = sf.query("SELECT FirstName, Email FROM Lead ORDER BY FirstName, Email LIMIT 2")
    assert [r["Email"] for r in nulls_first["records"]] == ["lead0001@example.com", "lead0003@example.com"]
    desc_nulls_first = sf.query("SELECT FirstName FROM Lead ORDER BY FirstName DESC LIMIT 1")
    assert desc_nulls_first["records"][0]["FirstName"] is None  # "By default, null values are sorted first"
    assert sf.query("SELECT COUNT() FROM Lead WHERE FirstName != null")["totalSize"] == 1_001
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more("01gHsNOPE000000-2000")
    assert refusal(caught)[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_deleted_records_are_left_out_except_by_query_all(sf_org, sf):
    gone = sf_org.add_lead("gone@example.com")
    sf_org.add_lead("here@example.com")
    sf_org.delete(gone)
    assert [r["Email"] for r in sf.query("SELECT Email FROM Lead")["records"]] == ["here@example.com"]
    every = sf.query("SELECT Email, IsDeleted FROM Lead", include_deleted=True)["records"]
    assert {(r["Email"], r["IsDeleted"]) for r in every} == {("gone@example.com", True), ("here@example.com", False)}


# sObject Collections update ----------------------------------------------------------------------
def test_a_collections_update_answers_each_record_and_writes_the_good_ones(sf_org, sf):
    good, locked, converted, deleted, picklist, too_long, owner, other = (
        sf_org.add_lead(f"l{i}@example.com") for i in range(8))
    sf_org.lock_row(locked)
    sf_org.convert(converted)
    sf_org.delete(deleted)
    former = sf_org.add_user("former.rep@example.com", active=False)
    before = sf_org.record(good)["LastModifiedDate"]
    contact = sf_org.add_contact("c@example.com")
    results = update(
        sf,
        lead(good, FirstName="Ana", Status="Working - Contacted"),
        lead(locked, FirstName="Ben"),
        lead(converted, FirstName="Cy"),
        lead(deleted, FirstName="Di"),
        lead(picklist, Status="Qualified"),
        lead(too_long, LastName="x" * 81),
        lead(owner, OwnerId=former),
        lead("00QHs00000ZZZZZ", FirstName="Nobody"),  # well formed, no such record
        lead("not-an-id", FirstName="Nobody"),
        lead(contact, FirstName="Wrong type"),
        {"attributes": {"type": "Contact"}, "id": contact, "FirstName": "Carla"},
        lead(other, FirstName="Eve"),
    )
    assert [r["success"] for r in results] == [True] + [False] * 9 + [True, True]
    assert results[0] == {"id": good, "success": True, "errors": []}
    assert [codes(r) for r in results[1:10]] == [
        ["UNABLE_TO_LOCK_ROW"], ["CANNOT_UPDATE_CONVERTED_LEAD"], ["ENTITY_IS_DELETED"],
        ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"], ["STRING_TOO_LONG"], ["INACTIVE_OWNER_OR_USER"],
        ["INVALID_CROSS_REFERENCE_KEY"], ["MALFORMED_ID"], ["MALFORMED_ID"]]
    assert all("id" not in r for r in results[1:10])  # a failed record's result has no id
    assert results[1]["errors"][0]["message"] == "unable to obtain exclusive access to this record"
    assert results[2]["errors"][0]["message"] == "cannot reference converted lead"
    assert results[4]["errors"][0] == {"statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status"],
                                       "message": "Status: bad value for restricted picklist field: Qualified"}
    assert results[5]["errors"][0]["fields"] == ["LastName"]
    assert results[5]["errors"][0]["message"].endswith("(max length=80)")
    assert results[6]["errors"][0]["message"] == "operation performed with inactive user"

    assert sf_org.record(good)["FirstName"] == "Ana" and sf_org.record(other)["FirstName"] == "Eve"
    assert sf_org.record(contact)["FirstName"] == "Carla"
    assert sf_org.record(good)["LastModifiedDate"] > before
    assert sf_org.history(good) == [{"FirstName": "Ana", "Status": "Working - Contacted"}]
    assert sf_org.record(locked)["FirstName"] is None and sf_org.history(locked) == []
    assert update(sf, lead(locked, FirstName="Ben"))[0]["success"] is True  # the lock was for one write


def test_all_or_none_rolls_every_record_back(sf_org, sf):
    ok, bad = sf_org.add_lead("ok@example.com"), sf_org.add_lead("bad@example.com")
    results = update(sf, lead(ok, FirstName="Ana"), lead(bad, Status="Nope"), all_or_none=True)
    assert [codes(r) for r in results] == [["ALL_OR_NONE_OPERATION_ROLLED_BACK"],
                                           ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]]
    assert sf_org.record(ok)["FirstName"] is None and sf_org.history(ok) == []
    assert update(sf, lead(ok, FirstName="Ana"), all_or_none=True)[0]["success"] is True


def test_more_than_200_records_are_refused_whole(sf_org, sf):
    ids = [sf_org.add_lead(f"x{i}@example.com") for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        update(sf, *(lead(i, FirstName="X") for i in ids))
    assert refusal(caught) == [{"message": "record limit reached. cannot submit more than 200 records into this call",
                                "errorCode": "EXCEEDED_ID_LIMIT"}]
    assert all(sf_org.history(i) == [] for i in ids)
    assert len(update(sf, *(lead(i, FirstName="X") for i in ids[:200]))) == 200


def test_unknown_fields_and_values_of_the_wrong_kind_refuse_the_whole_request(sf_org, sf):
    sf_org.grant_all()
    one, two = sf_org.add_lead("one@example.com"), sf_org.add_lead("two@example.com")
    refused = [
        (lead(two, Favourite_Colour__c="red"), "INVALID_FIELD", "No such column 'Favourite_Colour__c' on sobject of type Lead"),
        (lead(two, Handoff_Claimed_At__c="2024-05-01 10:00:00"), "JSON_PARSER_ERROR",
         "Cannot deserialize instance of datetime from VALUE_STRING value 2024-05-01 10:00:00"),
        (lead(two, Handoff_Claim_SLA_Met__c="yes"), "JSON_PARSER_ERROR", "instance of boolean from VALUE_STRING"),
    ]
    for bad, code, text in refused:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            update(sf, lead(one, FirstName="Ana"), bad)
        [error] = refusal(caught)
        assert error["errorCode"] == code and text in error["message"]
    assert sf_org.history(one) == []  # nothing was written
    [read_only] = update(sf, lead(one, IsConverted=True))
    assert read_only["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert read_only["errors"][0]["fields"] == ["IsConverted"]
    assert read_only["errors"][0]["message"].startswith("Unable to create/update fields: IsConverted. Please check")
    [fine] = update(sf, lead(one, Handoff_Claimed_At__c="2024-05-01T10:00:00Z", Handoff_Claim_SLA_Met__c=True))
    assert fine["success"] is True
    assert sf_org.record(one)["Handoff_Claimed_At__c"] == "2024-05-01T10:00:00.000+0000"


def test_picklists_follow_the_orgs_values(sf_org, sf):
    described = sf.Lead.describe()
    status = next(f for f in described["fields"] if f["name"] == "Status")
    assert status["type"] == "picklist" and status["restrictedPicklist"] is True
    assert [(p["value"], p["active"], p["defaultValue"]) for p in status["picklistValues"]] == [
        ("Open - Not Contacted", True, True), ("Working - Contacted", True, False),
        ("Closed - Converted", True, False), ("Closed - Not Converted", True, False)]
    sf_org.set_picklist("Lead", "Status", ["New", "Working"], inactive=["Open - Not Contacted"])
    ana = sf_org.add_lead("ana@example.com", status="New")
    results = update(sf, lead(ana, Status="Open - Not Contacted"), lead(ana, Status="Working"))
    assert [codes(r) for r in results] == [["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"], []]
    values = next(f for f in sf.Lead.describe()["fields"] if f["name"] == "Status")["picklistValues"]
    assert [(p["value"], p["active"]) for p in values] == [("New", True), ("Working", True),
                                                          ("Open - Not Contacted", False)]


# Upsert Tasks -------------------------------------------------------------------------------
def test_upserting_a_task_twice_by_its_event_id_makes_one_task(sf_org, sf):
    sf_org.grant_all()
    ana = sf_org.add_lead("ana@example.com")
    task = {"attributes": {"type": "Task"}, "Handoff_Event_Id__c": "evt-1", "WhoId": ana, "Subject": "Claimed",
            "Status": "Completed", "ActivityDate": "2024-05-01"}
    [first] = sf.restful(UPSERT, method="PATCH", json={"allOrNone": False, "records": [task]})
    assert first["success"] is True and first["created"] is True and first["id"].startswith("00T")
    [second] = sf.restful(UPSERT, method="PATCH",
                          json={"allOrNone": False, "records": [{**task, "Subject": "Claimed again"}]})
    assert second == {"id": first["id"], "success": True, "errors": [], "created": False}
    [stored] = sf_org.tasks()
    assert stored["Subject"] == "Claimed again" and stored["WhoId"] == ana
    assert stored["OwnerId"] == sf_org.integration_user_id and stored["Priority"] == "Normal"
    found = sf.query("SELECT Id, Handoff_Event_Id__c FROM Task WHERE Handoff_Event_Id__c = 'EVT-1'")
    assert [r["Id"] for r in found["records"]] == [first["id"]]  # external ids match case-insensitively

    converted = sf_org.add_lead("conv@example.com")
    sf_org.convert(converted)
    results = sf.restful(UPSERT, method="PATCH", json={"records": [
        {**task, "Handoff_Event_Id__c": "evt-2", "WhoId": converted},
        {**task, "Handoff_Event_Id__c": "evt-3", "Status": "Done"},
        {**task, "Handoff_Event_Id__c": "evt-4", "WhoId": sf_org.integration_user_id},
        {**task, "Handoff_Event_Id__c": "evt-5", "WhoId": sf_org.add_contact("c@example.com")},
    ]})
    assert [codes(r) for r in results] == [["CANNOT_UPDATE_CONVERTED_LEAD"],
                                           ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"],
                                           ["FIELD_INTEGRITY_EXCEPTION"], []]
    assert [r["created"] for r in results] == [False, False, False, True]
    assert len(sf_org.tasks()) == 2
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful(UPSERT, method="PATCH", json={"records": [{**task, "ActivityDate": "May 1st"}]})
    assert refusal(caught)[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_upsert_needs_a_visible_external_id_field(sf_org, sf):
    with pytest.raises(SalesforceResourceNotFound) as caught:  # the field exists only once created and granted
        sf.restful(UPSERT, method="PATCH", json={"records": []})
    assert refusal(caught) == [{"message": "Provided external ID field does not exist or is not accessible: "
                                           "Handoff_Event_Id__c", "errorCode": "NOT_FOUND"}]
    sf_org.grant_all()
    assert sf.restful(UPSERT, method="PATCH", json={"records": []}) is None  # [] reads as nothing
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite/sobjects/Task/Subject", method="PATCH", json={"records": []})


# Field-level security, set up through HTTP -------------------------------------------------------------
def test_a_new_custom_field_is_invisible_until_a_permission_set_grants_it(sf_org, sf):
    ana = sf_org.add_lead("ana@example.com")
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, Handoff_Status__c FROM Lead")
    assert refusal(caught)[0]["errorCode"] == "INVALID_FIELD"

    for spec in HANDOFF_FIELDS:
        created = sf.toolingexecute("sobjects/CustomField", method="POST", data=spec)
        assert created["success"] is True and created["id"].startswith("00N") and created["errors"] == []
    listed = sf.toolingexecute("query", params={"q": "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField "
                                                     "WHERE TableEnumOrId = 'Activity'"})
    assert [(r["DeveloperName"], r["TableEnumOrId"]) for r in listed["records"]] == [("Handoff_Event_Id", "Activity")]
    assert listed["entityTypeName"] == "CustomField" and listed["size"] == 1

    # Created, but the integration user is granted nothing yet.
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, Handoff_Status__c FROM Lead")
    assert "No such column 'Handoff_Status__c' on entity 'Lead'" in refusal(caught)[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        update(sf, lead(ana, Handoff_Status__c="claimed"))
    assert refusal(caught) == [{"message": "No such column 'Handoff_Status__c' on sobject of type Lead",
                                "errorCode": "INVALID_FIELD"}]
    assert "Handoff_Status__c" not in {f["name"] for f in sf.Lead.describe()["fields"]}

    fields = [s["FullName"] for s in HANDOFF_FIELDS if not s["FullName"].startswith("Activity.")]
    fields += ["Task.Handoff_Event_Id__c", "Event.Handoff_Event_Id__c"]
    permission_set = grant_through_http(sf, sf_org.integration_user_id, fields)

    described = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert described["Handoff_Status__c"]["updateable"] is True and described["Handoff_Status__c"]["length"] == 40
    assert described["Handoff_Claimed_At__c"]["type"] == "datetime"
    assert described["Handoff_Claim_SLA_Met__c"]["type"] == "boolean"
    event_id = next(f for f in sf.Task.describe()["fields"] if f["name"] == "Handoff_Event_Id__c")
    assert event_id["externalId"] is True and event_id["unique"] is True
    assert update(sf, lead(ana, Handoff_Status__c="claimed"))[0]["success"] is True
    rows = sf.query("SELECT Handoff_Status__c, Handoff_Claim_SLA_Met__c FROM Lead")["records"]
    assert [(r["Handoff_Status__c"], r["Handoff_Claim_SLA_Met__c"]) for r in rows] == [("claimed", False)]

    assignments = sf.query(format_soql("SELECT Id, AssigneeId, PermissionSetId FROM PermissionSetAssignment "
                                       "WHERE AssigneeId = {}", sf_org.integration_user_id))["records"]
    assert [a["PermissionSetId"] for a in assignments] == [permission_set]
    granted = sf.query(format_soql("SELECT Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
                                   "WHERE ParentId = {} AND SobjectType = 'Task'", permission_set))["records"]
    assert [(g["Field"], g["PermissionsRead"], g["PermissionsEdit"]) for g in granted] == [
        ("Task.Handoff_Event_Id__c", True, True)]


def test_read_without_edit_shows_the_field_but_refuses_writes(sf_org, sf):
    sf.toolingexecute("sobjects/CustomField", method="POST", data=HANDOFF_FIELDS[0])
    grant_through_http(sf, sf_org.integration_user_id, ["Lead.Handoff_Status__c"], edit=False)
    ana = sf_org.add_lead("ana@example.com")
    described = next(f for f in sf.Lead.describe()["fields"] if f["name"] == "Handoff_Status__c")
    assert described["updateable"] is False and described["createable"] is False
    [result] = update(sf, lead(ana, Handoff_Status__c="claimed"))
    assert codes(result) == ["INVALID_FIELD_FOR_INSERT_UPDATE"] and result["errors"][0]["fields"] == [
        "Handoff_Status__c"]


def test_setup_repeats_are_refused_the_way_salesforce_refuses_them(sf_org, sf):
    sf.toolingexecute("sobjects/CustomField", method="POST", data=HANDOFF_FIELDS[0])
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.toolingexecute("sobjects/CustomField", method="POST", data=HANDOFF_FIELDS[0])
    [error] = refusal(caught)
    assert error["errorCode"] == "DUPLICATE_DEVELOPER_NAME" and "Handoff_Status" in error["message"]
    for metadata, named in (({"label": "X", "type": "Text"}, "length"), ({"type": "Text", "length": 5}, "label"),
                            ({"label": "X", "type": "Picture"}, "type"),
                            ({"label": "X", "type": "LongTextArea", "length": 32768}, "visibleLines"),
                            ({"label": "X", "type": "Checkbox"}, "defaultValue")):
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.toolingexecute("sobjects/CustomField", method="POST",
                              data={"FullName": "Lead.Other__c", "Metadata": metadata})
        assert refusal(caught)[0]["fields"] == [named]

    permission_set = grant_through_http(sf, sf_org.integration_user_id, ["Lead.Handoff_Status__c"])
    repeats = [
        ("PermissionSet", {"Name": "Handoff_Test", "Label": "Again"}, "duplicate value found: <unknown>"),
        ("FieldPermissions", {"ParentId": permission_set, "SobjectType": "Lead", "Field": "Lead.Handoff_Status__c",
                              "PermissionsRead": True}, "duplicate value found: <unknown>"),
        ("PermissionSetAssignment", {"AssigneeId": sf_org.integration_user_id, "PermissionSetId": permission_set},
         "Duplicate PermissionSetAssignment"),
    ]
    for sobject, body, text in repeats:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            getattr(sf, sobject).create(body)
        [error] = refusal(caught)
        assert error["errorCode"] == "DUPLICATE_VALUE" and error["message"].startswith(text), sobject
    bad_rows = [
        ({"ParentId": permission_set, "SobjectType": "Lead", "Field": "Lead.Nope__c", "PermissionsRead": True},
         "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"ParentId": permission_set, "SobjectType": "Lead", "Field": "Lead.Email", "PermissionsEdit": True},
         "FIELD_INTEGRITY_EXCEPTION"),
        ({"ParentId": permission_set, "SobjectType": "Lead"}, "REQUIRED_FIELD_MISSING"),
    ]
    for body, code in bad_rows:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.FieldPermissions.create(body)
        assert refusal(caught)[0]["errorCode"] == code, body


def test_fullname_and_metadata_can_be_queried_one_row_at_a_time(sf_org, sf):
    sf_org.grant_all()
    query = "SELECT Id, FullName, Metadata FROM CustomField WHERE TableEnumOrId = 'Lead'"
    with pytest.raises(SalesforceMalformedRequest):
        sf.toolingexecute("query", params={"q": query})
    [one] = sf.toolingexecute("query", params={"q": query + " AND DeveloperName = 'Handoff_Feedback_Note'"})["records"]
    assert one["FullName"] == "Lead.Handoff_Feedback_Note__c"
    assert one["Metadata"]["type"] == "LongTextArea" and one["Metadata"]["length"] == 32768


# Limits, sessions, faults -------------------------------------------------------------------------------
def test_every_rest_answer_counts_and_carries_sforce_limit_info(sf_org, sf, http):
    sf.query("SELECT Id FROM Lead")
    sf.query("SELECT Id FROM Lead")
    assert sf.api_usage["api-usage"].used == 2 and sf.api_usage["api-usage"].total == 100_000
    assert sf.limits()["DailyApiRequests"] == {"Max": 100_000, "Remaining": 100_000 - 3}

    sf_org.set_usage(9, max=10)
    sf.query("SELECT Id FROM Lead")
    assert sf.api_usage["api-usage"].used == 10 and sf_org.usage == 10
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Lead")
    assert caught.value.status == 403
    assert refusal(caught) == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    raw = http.get(sf_org.url + f"{V}/limits", headers={"Authorization": f"Bearer {sf.session_id}"}, timeout=5)
    assert raw.status_code == 403 and raw.headers["Sforce-Limit-Info"] == "api-usage=10/10"
    unauthenticated = http.get(sf_org.url + f"{V}/limits", timeout=5)
    assert unauthenticated.status_code == 401 and "Sforce-Limit-Info" in unauthenticated.headers


def test_an_expired_session_is_401_and_a_new_token_works(sf_org, sf, http):
    sf.query("SELECT Id FROM Lead")
    sf_org.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM Lead")
    assert refusal(caught) == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    token = get_token(sf_org, http).json()["access_token"]
    fresh = Salesforce(instance_url=sf_org.url, session_id=token, version="60.0", session=http)
    assert fresh.query("SELECT Id FROM Lead")["totalSize"] == 0
    oauth_scheme = http.get(sf_org.url + f"{V}/limits", headers={"Authorization": f"OAuth {token}"}, timeout=5)
    assert oauth_scheme.status_code == 200


def test_versions_outside_31_to_63_are_not_found(sf_org, sf, http):
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    for version, status in (("30.0", 404), ("31.0", 200), ("63.0", 200), ("64.0", 404)):
        answer = http.get(sf_org.url + f"/services/data/v{version}/limits", headers=headers, timeout=5)
        assert answer.status_code == status, version
    assert answer.json() == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
    wrong_method = http.delete(sf_org.url + f"{V}/limits", headers=headers, timeout=5)
    assert wrong_method.status_code == 405 and wrong_method.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


def test_down_answers_503_until_up(sf_org, sf):
    sf_org.down()
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query("SELECT Id FROM Lead")
    assert caught.value.status == 503
    sf_org.up()
    assert sf.query("SELECT Id FROM Lead")["totalSize"] == 0


def test_fail_next_answers_once_each_and_only_where_asked(sf_org, sf):
    ana = sf_org.add_lead("ana@example.com")
    sf_org.fail_next(2, status=500, path="/composite/sobjects")
    assert sf.query("SELECT Id FROM Lead")["totalSize"] == 1  # another path is not affected
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError) as caught:
            update(sf, lead(ana, FirstName="Ana"))
        assert caught.value.status == 500 and refusal(caught)[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert update(sf, lead(ana, FirstName="Ana"))[0]["success"] is True
    assert [c.status for c in sf_org.calls_to("/composite/sobjects")] == [500, 500, 200]
    assert sf_org.usage == 2  # injected failures are not counted


def test_drop_after_commit_applies_the_write_then_hangs_up(sf_org, sf):
    ana = sf_org.add_lead("ana@example.com")
    sf_org.drop_after_commit(path="/composite/sobjects")
    with pytest.raises(requests.exceptions.ConnectionError):
        update(sf, lead(ana, FirstName="Ana"))
    assert sf_org.record(ana)["FirstName"] == "Ana" and sf_org.history(ana) == [{"FirstName": "Ana"}]
    assert sf_org.calls_to("/composite/sobjects")[-1].status == 0
    assert update(sf, lead(ana, FirstName="Ana B."))[0]["success"] is True  # the next one is answered


def test_slow_down_delays_the_answer(sf_org, sf):
    sf_org.slow_down("/query", 0.15)
    started = time.monotonic()
    sf.query("SELECT Id FROM Lead")
    assert time.monotonic() - started >= 0.15


def test_calls_are_recorded_and_can_be_waited_for(sf_org, sf):
    sf.query("SELECT Id FROM Lead")
    assert sf_org.wait_for(lambda calls: any(c.path.endswith("/query/") for c in calls), timeout=1)
    call = sf_org.calls_to("/query")[-1]
    assert (call.method, call.status, call.query) == ("GET", 200, {"q": "SELECT Id FROM Lead"})
    assert call.arrived <= call.at
    assert not sf_org.wait_for(lambda calls: len(calls) > 10, timeout=0.05)


def test_concurrent_clients_are_answered_and_counted_exactly(sf_org):
    ids = [sf_org.add_lead(f"c{i}@example.com") for i in range(8)]
    token = sf_org.token()

    def work(lead_id):
        with requests.Session() as session:
            session.verify, session.trust_env = sf_org.ca_file, False
            client = Salesforce(instance_url=sf_org.url, session_id=token, version="60.0", session=session)
            for n in range(5):
                assert update(client, lead(lead_id, FirstName=f"N{n}"))[0]["success"] is True
                assert client.query(format_soql("SELECT FirstName FROM Lead WHERE Id = {}", lead_id))["totalSize"] == 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, ids))
    assert sf_org.usage == 8 * 5 * 2
    assert all([h["FirstName"] for h in sf_org.history(i)] == [f"N{n}" for n in range(5)] for i in ids)


# Ids --------------------------------------------------------------------------------------------------------
def test_ids_have_salesforces_case_safe_suffix_and_15_or_18_characters_are_taken(sf_org, sf):
    assert id18("00300000003T2PG") == "00300000003T2PGAA0"  # the knowledge article's example
    assert normalize_id("00300000003t2pgaa0") == "00300000003T2PGAA0"  # an 18 is case-insensitive
    assert normalize_id("00300000003T2P") is None and normalize_id("00300000003T2PGAA9") is None
    ana = sf_org.add_lead("ana@example.com")
    assert len(ana) == 18 and ana.startswith("00Q") and id18(ana[:15]) == ana
    short = ana[:15]
    assert [r["Id"] for r in sf.query(f"SELECT Id FROM Lead WHERE Id = '{short}'")["records"]] == [ana]
    assert sf.query(f"SELECT Id FROM Lead WHERE Id IN ('{ana.lower()}')")["totalSize"] == 1
    assert update(sf, lead(short, FirstName="Ana"))[0] == {"id": ana, "success": True, "errors": []}
    assert sf.Lead.get(short)["FirstName"] == "Ana"
    rep = sf_org.add_user("rep@example.com")
    assert update(sf, lead(ana, OwnerId=rep[:15]))[0]["success"] is True
    assert sf_org.record(ana)["OwnerId"] == rep  # a reference is stored as the 18-character id
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Lead WHERE Id = 'nope'")
    assert refusal(caught)[0]["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR"
    assert {"User": "005", "Lead": "00Q", "Contact": "003"} == {
        "User": sf_org.integration_user_id[:3], "Lead": ana[:3], "Contact": sf_org.add_contact("c@example.com")[:3]}


def test_the_seeding_api_refuses_what_salesforce_would_store_no_differently(sf_org):
    with pytest.raises(ValueError, match="No such column"):
        sf_org.add_lead("ana@example.com", Favourite__c="x")
    sf_org.grant_all()
    ana = sf_org.add_lead("ana@example.com", Handoff_Status__c="new", FirstName="Ana")
    assert sf_org.record(ana)["Handoff_Status__c"] == "new" and sf_org.record(ana)["Handoff_Claim_SLA_Met__c"] is False
    contact = sf_org.convert(ana)
    assert sf_org.record(ana)["ConvertedContactId"] == contact and sf_org.record(ana)["Status"] == "Closed - Converted"
    with pytest.raises(KeyError):
        sf_org.record("00QHs00000NOPE1")


# Running alone ------------------------------------------------------------------------------------------------
def test_the_module_imports_without_simple_salesforce():
    code = "import sys; sys.modules['simple_salesforce'] = None; import standin.salesforce"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)


def test_main_prints_its_url_and_ca_file_and_serves():
    process = subprocess.Popen([sys.executable, "-m", "standin.salesforce", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        ca_file = process.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:") and ca_file.endswith("ca.pem")
        answer = requests.post(url + "/services/oauth2/token", verify=ca_file, timeout=5, data={
            "grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET})
        assert answer.status_code == 200 and answer.json()["instance_url"] == url
    finally:
        process.terminate()
        process.wait(timeout=5)
