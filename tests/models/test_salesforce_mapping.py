"""What Handoff writes to Salesforce and how it asks for records (models/salesforce.py), as pure functions."""
from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from models import salesforce as mapping
from models.tables import Lead

PREFIX = "https://acme.my.salesforce.com/services/data/v60.0/query/?"


def lead(**fields) -> Lead:
    base = dict(email="a@example.com", mql_at=datetime(2026, 11, 30, 1, tzinfo=UTC),
                claim_due=datetime(2026, 11, 30, 2, tzinfo=UTC))
    return Lead(**{**base, **fields})


def test_a_claimed_lead_within_its_sla():
    fields = mapping.record_fields(lead(claimed_at=datetime(2026, 11, 30, 1, 30, tzinfo=UTC), claimed_by="U1"),
                                   {"claimed": "Working - Contacted"}, "005000000000001AAA")
    assert fields["Handoff_Status__c"] == "claimed" and fields["Status"] == "Working - Contacted"
    assert fields["Handoff_Claimed_At__c"] == "2026-11-30T01:30:00.000Z" and fields["Handoff_Claim_SLA_Met__c"] is True
    assert fields["OwnerId"] == "005000000000001AAA" and fields["Handoff_Owner__c"] == "U1"
    assert fields["Handoff_Lost_Reason__c"] is None  # cleared, as after an undo


def test_a_status_out_of_the_map_and_no_owner_leave_status_and_owner_as_they_are():
    fields = mapping.record_fields(lead(), {"claimed": "Working - Contacted"}, None)
    assert "Status" not in fields and "OwnerId" not in fields
    assert fields["Handoff_Claim_SLA_Met__c"] is False
    assert "Status" not in mapping.for_object({**fields, "Status": "X"}, "Contact")


def test_a_long_note_is_cut_to_fit_never_refused():
    note = "あ" * 40_000
    cut = mapping.record_fields(lead(outcome_note=note), {}, None)["Handoff_Feedback_Note__c"]
    assert len(cut) == 32_768 and cut.endswith("…")
    assert mapping.cut("", 10) is None and mapping.cut("short", 10) == "short"


def test_which_record_an_email_is_written_to():
    older = {"Id": "00Q1", "LastModifiedDate": "2026-11-01T00:00:00.000+0000", "IsConverted": False}
    newer = {"Id": "00Q2", "LastModifiedDate": "2026-11-20T00:00:00.000+0000", "IsConverted": False}
    converted = {"Id": "00Q3", "LastModifiedDate": "2026-11-25T00:00:00.000+0000", "IsConverted": True,
                 "ConvertedContactId": "0031"}
    contact = {"Id": "0032", "LastModifiedDate": "2026-11-26T00:00:00.000+0000"}
    assert mapping.choose([older, converted, newer], [contact]) == ("00Q2", "Lead")
    assert mapping.choose([converted], [contact]) == ("0031", "Contact")
    assert mapping.choose([], [contact]) == ("0032", "Contact")
    assert mapping.choose([], []) is None


EMAIL = st.from_regex(r"[a-z'\\.%+_-]{1,64}@[a-z]{1,63}\.[a-z]{2,12}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(EMAIL, min_size=1, max_size=400, unique=True))
def test_every_email_is_asked_once_in_queries_whose_uri_fits(emails):
    queries = mapping.email_queries("Lead", mapping.LEAD_COLUMNS, emails, len(PREFIX))
    asked = [e for _, chunk in queries for e in chunk]
    assert sorted(asked) == sorted(emails)
    for soql, chunk in queries:
        uri = requests.Request("GET", PREFIX[:-1], params={"q": soql}).prepare().url
        assert len(uri.encode()) <= mapping.URI_LIMIT - mapping.HEADROOM
        assert soql.startswith("SELECT Id, Email, IsConverted, ConvertedContactId, LastModifiedDate FROM Lead")
        for email in chunk:  # each one a quoted literal with ' and \ escaped
            escaped = email.replace("\\", "\\\\").replace("'", "\\'")
            assert f"'{escaped}'" in soql


def test_short_emails_take_few_queries():
    emails = [f"lead{i}@bench.example" for i in range(10_000)]
    queries = mapping.email_queries("Lead", mapping.LEAD_COLUMNS, emails, len(PREFIX))
    assert len(queries) <= 25
    assert len(urlencode({"q": queries[0][0]})) > 14_000  # each one filled close to the limit
