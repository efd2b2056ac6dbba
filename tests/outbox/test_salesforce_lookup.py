"""The Salesforce lane's lookup by email (outbox/salesforce.py `_by_email`) as logic, with a connection that
answers from a table: which leads a query decides as it answers, and which are found nowhere."""
from __future__ import annotations

from types import SimpleNamespace

from models import salesforce as mapping
from outbox.salesforce import SalesforceWriter


class TableConnection:
    """Answers SOQL by email from `records` ({email: [record]}), keeping the queries asked."""

    def __init__(self, records: dict[str, list[dict]], prefix: int = 60):
        self.records, self.prefix, self.asked = records, prefix, []

    def uri_prefix(self) -> int:
        return self.prefix

    def query(self, soql: str) -> list[dict]:
        self.asked.append(soql)
        sobject = "Contact" if " FROM Contact " in soql else "Lead"
        return [r for address, rows in self.records.items() if f"'{address}'" in soql for r in rows
                if r["Id"].startswith(mapping.LEAD_PREFIX if sobject == "Lead" else mapping.CONTACT_PREFIX)]


def taken(lead_id: int, email: str | None):
    return SimpleNamespace(lead=SimpleNamespace(id=lead_id, email_norm=email))


def lookup(connection, leads):
    writer = SalesforceWriter.__new__(SalesforceWriter)
    writer.connection = connection
    from concurrent.futures import ThreadPoolExecutor

    writer._pool = ThreadPoolExecutor(2)
    settled: list[list[tuple[int, str]]] = []
    remaining = list(leads)

    def lease(limit: int):
        got = remaining[:limit]
        del remaining[:limit]
        return got
    try:
        missing = writer._by_email(lease, settled.append)
    finally:
        writer._pool.shutdown()
    return settled, missing


LEAD_A, LEAD_B, CONVERTED, CONTACT = "00Q000000000001AAA", "00Q000000000002AAA", "00Q000000000003AAA", \
    "003000000000004AAA"


def test_a_lead_decides_at_once_a_contact_after_and_the_rest_are_found_nowhere():
    connection = TableConnection({
        "a@example.com": [{"Id": LEAD_A, "Email": "A@example.com", "IsConverted": False}],
        "b@example.com": [{"Id": LEAD_B, "Email": "b@example.com", "IsConverted": True,
                           "ConvertedContactId": CONTACT}],
        "c@example.com": [{"Id": CONTACT, "Email": "c@example.com"}]})
    settled, missing = lookup(connection, [taken(1, "a@example.com"), taken(2, "b@example.com"),
                                           taken(3, "c@example.com"), taken(4, "d@example.com"), taken(5, None),
                                           taken(6, "a@example.com")])
    # the Leads' query settles a, and b through its converted Contact; then the Contacts' query settles c
    assert settled == [[(1, LEAD_A), (6, LEAD_A), (2, CONTACT)], [(3, CONTACT)]]
    assert missing == {"no Salesforce Lead or Contact with this email": [5, 4]}
    assert [" FROM Contact " in q for q in connection.asked] == [False, True]


def test_an_address_no_query_can_hold_is_found_nowhere_not_taken_again_and_again():
    # A URI whose fixed part leaves no room for the address (no real one does: an email has at most 254
    # characters): its lead is reported not found, so its row leaves the lookup queue.
    connection = TableConnection({}, prefix=mapping.URI_LIMIT - mapping.HEADROOM - 100)
    settled, missing = lookup(connection, [taken(1, "x" * 200 + "@example.com")])
    assert settled == [[]] and missing == {"no Salesforce Lead or Contact with this email": [1]}


def test_leased_a_chunk_at_a_time_the_queries_are_as_few_as_leasing_all_at_once(monkeypatch):
    import outbox.salesforce as lane

    monkeypatch.setattr(lane, "LOOKUP_CHUNK", 7)  # chunks that end in the middle of a query
    prefix = mapping.URI_LIMIT - mapping.HEADROOM - 300  # room for about ten addresses a query
    addresses = [f"l{i}@example.com" for i in range(45)]
    records = {a: [{"Id": f"00Q{i:012d}AAA", "Email": a, "IsConverted": False}] for i, a in enumerate(addresses)}
    connection = TableConnection(records, prefix=prefix)
    settled, missing = lookup(connection, [taken(i, a) for i, a in enumerate(addresses)])
    at_once = mapping.email_queries("Lead", mapping.LEAD_COLUMNS, addresses, prefix)
    assert len(connection.asked) == len(at_once) and len(at_once) >= 4
    assert sorted(hit for part in settled for hit in part) == [(i, f"00Q{i:012d}AAA") for i in range(45)]
    assert missing == {"no Salesforce Lead or Contact with this email": []}
