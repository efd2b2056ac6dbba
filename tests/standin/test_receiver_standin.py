"""The webhook receiver stand-in (standin/receiver.py) verifies what a customer's endpoint verifies, answers
over keep-alive connections, and misbehaves when told to."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook

from standin.receiver import Delivery, WebhookReceiver, new_secret

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"handoff-receiver-test-secret-32b").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-endpoint-secret-32byt").decode()


def event(lead_id: int = 7, type_: str = "lead.assigned") -> bytes:
    return json.dumps({"type": type_, "timestamp": "2025-01-06T09:30:00Z",
                       "data": {"lead_id": lead_id, "state": "assigned"}}, separators=(",", ":")).encode()


def signed(msg_id: str, body: bytes, *, secret: str = SECRET, at: datetime | None = None) -> dict:
    """The headers Handoff sends: the signature covers `{id}.{timestamp}.{body bytes}`."""
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body), "Content-Type": "application/json"}


@pytest.fixture()
def receiver():
    with WebhookReceiver(SECRET) as r:
        yield r


@pytest.fixture()
def session():
    with requests.Session() as s:
        yield s


def post(session, receiver, msg_id: str, body: bytes | None = None, **kw) -> requests.Response:
    body = event() if body is None else body
    headers = kw.pop("headers", None) or signed(msg_id, body)
    return session.post(receiver.url, data=body, headers=headers, timeout=kw.pop("timeout", 5), **kw)


def test_a_signed_event_is_delivered_with_its_parsed_body(receiver, session):
    body = event(lead_id=42)
    r = post(session, receiver, "msg_1", body)
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert r.headers["Content-Length"] == str(len(r.content))
    [d] = receiver.deliveries
    assert isinstance(d, Delivery)
    assert (d.id, d.type, d.raw, d.path, d.status) == ("msg_1", "lead.assigned", body, "/hooks", 200)
    assert d.body["data"] == {"lead_id": 42, "state": "assigned"}
    assert abs(d.timestamp - time.time()) < 5 and d.headers["webhook-id"] == "msg_1"
    assert receiver.ids() == ["msg_1"] and receiver.by_type("lead.assigned") == [d] and not receiver.rejected
    assert receiver.attempts[0].status == 200 and receiver.attempts[0].delivered


def test_any_path_is_accepted_and_recorded(receiver, session):
    body = event()
    r = session.post(receiver.url.replace("/hooks", "/customer/handoff"), data=body, headers=signed("m", body))
    assert r.status_code == 200 and receiver.deliveries[0].path == "/customer/handoff"


@pytest.mark.parametrize(("why", "status", "reason"), [
    ("wrong secret", 401, "bad signature"),
    ("tampered body", 401, "bad signature"),
    ("id changed", 401, "bad signature"),
    ("stale", 400, "timestamp too old"),
    ("future", 400, "timestamp too new"),
    ("no signature", 400, "missing headers: webhook-signature"),
    ("no headers", 400, "missing headers: webhook-id, webhook-timestamp, webhook-signature"),
    ("not json", 400, "not json"),
    ("NaN", 400, "not json"),
    ("not an event", 400, "not an event"),
    ("text/plain", 400, "content type"),
    ("float timestamp", 400, "invalid timestamp"),
    ("dot in id", 400, "bad webhook-id"),
])
def test_what_does_not_verify_is_rejected_and_never_delivered(receiver, session, why, status, reason):
    body, msg_id = event(), "msg_1"
    headers = signed(msg_id, body)
    if why == "wrong secret":
        headers = signed(msg_id, body, secret=OTHER_SECRET)
    elif why == "tampered body":
        body = body.replace(b'"lead_id":7', b'"lead_id":8')
    elif why == "id changed":
        headers["webhook-id"] = "msg_2"
    elif why in ("stale", "future"):
        at = datetime.now(UTC) + timedelta(minutes=-6 if why == "stale" else 6)
        headers = signed(msg_id, body, at=at)
    elif why == "no signature":
        del headers["webhook-signature"]
    elif why == "no headers":
        headers = {"Content-Type": "application/json"}
    elif why in ("not json", "NaN", "not an event"):
        body = {"not json": b"lead 7 assigned", "NaN": b'{"type":"x","timestamp":"2025-01-06T09:30:00Z",'
                b'"data":{"score":NaN}}', "not an event": b'{"lead_id": 7}'}[why]
        headers = signed(msg_id, body)
    elif why == "text/plain":
        headers["Content-Type"] = "text/plain"
    elif why == "float timestamp":  # the library accepts it, and signs the floor: a customer's would too
        headers["webhook-timestamp"] += ".0"
    elif why == "dot in id":
        headers = signed("msg.1", body)
    r = session.post(receiver.url, data=body, headers=headers, timeout=5)
    assert r.status_code == status, r.text
    assert not receiver.deliveries and receiver.ids() == []
    [rejected] = receiver.rejected
    assert rejected.reason.startswith(reason), rejected.reason
    assert rejected.status == status and not rejected.delivered and receiver.attempts == [rejected]
    assert r.json()["error"] == rejected.reason


def test_one_of_several_signatures_is_enough_as_during_a_secret_rotation(receiver, session):
    body = event()
    headers = signed("msg_1", body)
    old = Webhook(OTHER_SECRET).sign("msg_1", datetime.now(UTC), body)
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"
    assert post(session, receiver, "msg_1", body, headers=headers).status_code == 200
    receiver.set_secret(OTHER_SECRET)  # the customer now only knows the other secret
    assert post(session, receiver, "msg_2").status_code == 401


def test_a_duplicate_is_delivered_twice_and_kept_once(receiver, session):
    first = post(session, receiver, "msg_1", event(1))
    post(session, receiver, "msg_2", event(2, "lead.accepted"))
    again = post(session, receiver, "msg_1", event(1))  # a retry: same id, new timestamp and signature
    assert first.status_code == again.status_code == 200
    assert [d.id for d in receiver.deliveries] == ["msg_1", "msg_2", "msg_1"]
    assert [d.id for d in receiver.events()] == receiver.ids() == ["msg_1", "msg_2"]
    assert receiver.events()[0] is receiver.deliveries[0]
    assert len(receiver.by_type("lead.assigned")) == 1 and len(receiver.by_type("lead.assigned", distinct=False)) == 2
    assert len(receiver.wait_count(2, timeout=1)) == 2
    assert not receiver.wait_for(lambda deliveries: len(deliveries) > 3, timeout=0.05)


def test_keep_alive_carries_200_requests_on_one_connection(receiver, session):
    started = time.monotonic()
    for i in range(200):
        r = post(session, receiver, f"msg_{i}", event(i))
        assert r.status_code == 200 and r.headers["Content-Length"] == "11"
    took = time.monotonic() - started
    assert len(receiver.wait_count(200, timeout=1)) == 200
    assert {a.connection for a in receiver.attempts} == {receiver.attempts[0].connection}
    assert receiver.connections == 1 and receiver.open_connections == 1
    assert took < 2.0, f"200 requests took {took:.2f} s: keep-alive or Nagle trouble"


def test_rejections_and_faults_keep_the_connection_alive(receiver, session):
    post(session, receiver, "msg_1", headers={"Content-Type": "application/json"})  # 400
    post(session, receiver, "msg_2", headers=signed("msg_2", b"other bytes"))  # 401
    receiver.fail_next(1, 503)
    post(session, receiver, "msg_3")
    assert post(session, receiver, "msg_4").status_code == 200
    assert [a.status for a in receiver.attempts] == [400, 401, 503, 200]
    assert receiver.connections == 1


def test_fail_next_answers_503_without_delivering_then_succeeds(receiver, session):
    receiver.fail_next(2, 503, retry_after=7)
    answers = [post(session, receiver, "msg_1") for _ in range(3)]
    assert [r.status_code for r in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "7" and "Retry-After" not in answers[2].headers
    assert [d.id for d in receiver.deliveries] == ["msg_1"]
    assert [a.status for a in receiver.attempts] == [503, 503, 200] and not receiver.rejected
    assert receiver.attempts[0].reason == "fail_next: answered 503"


def test_429_carries_retry_after(receiver, session):
    receiver.fail_next(1, 429, retry_after=2.5)
    r = post(session, receiver, "msg_1")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3" and not receiver.deliveries


def test_a_fault_does_not_hide_a_bad_signature(receiver, session):
    receiver.fail_next(1, 503)
    assert post(session, receiver, "msg_1", headers=signed("msg_1", b"x")).status_code == 401
    assert post(session, receiver, "msg_1").status_code == 503


def test_answer_always_until_told_to_stop(receiver, session):
    receiver.answer_always(500)
    assert [post(session, receiver, f"m{i}").status_code for i in range(3)] == [500, 500, 500]
    receiver.answer_always(204)  # a 2xx delivers: no body and no Content-Length, as HTTP wants
    r = post(session, receiver, "m3")
    assert r.status_code == 204 and r.content == b"" and receiver.ids() == ["m3"]
    receiver.answer_always(None)
    assert post(session, receiver, "m4").status_code == 200 and receiver.ids() == ["m3", "m4"]
    assert receiver.connections == 1


def test_down_closes_connections_without_an_answer(receiver, session):
    assert post(session, receiver, "msg_1").status_code == 200
    receiver.down()
    with pytest.raises(requests.ConnectionError):
        post(session, receiver, "msg_2")  # on the kept-alive connection
    with pytest.raises(requests.ConnectionError):
        post(requests, receiver, "msg_3")  # on a new one
    assert [a.status for a in receiver.attempts] == [200, None, None] and receiver.ids() == ["msg_1"]
    receiver.up()
    assert post(session, receiver, "msg_2").status_code == 200 and receiver.ids() == ["msg_1", "msg_2"]


def test_a_closed_port_refuses_connections_and_reopens_on_the_same_port(receiver, session):
    url = receiver.url
    assert post(session, receiver, "msg_1").status_code == 200
    receiver.close_port()
    with pytest.raises(requests.ConnectionError):
        post(session, receiver, "msg_2")
    with pytest.raises(requests.ConnectionError):
        post(requests, receiver, "msg_3")
    assert len(receiver.attempts) == 1 and receiver.open_connections == 0
    receiver.reopen_port()
    assert receiver.url == url
    assert post(session, receiver, "msg_2").status_code == 200 and receiver.ids() == ["msg_1", "msg_2"]


def test_slow_down_makes_a_short_timeout_expire(receiver, session):
    receiver.slow_down(0.3)
    with pytest.raises(requests.ReadTimeout):
        post(session, receiver, "msg_1", timeout=0.1)
    # the endpoint did process it: the sender, which saw a timeout, will send it again
    assert len(receiver.wait_count(1, timeout=2)) == 1
    receiver.slow_down(0)
    started = time.monotonic()
    assert post(session, receiver, "msg_1", timeout=0.5).status_code == 200
    assert time.monotonic() - started < 0.25
    assert [d.id for d in receiver.deliveries] == ["msg_1", "msg_1"] and receiver.ids() == ["msg_1"]


def test_reset_forgets_everything_and_behaves_again(receiver, session):
    post(session, receiver, "msg_1")
    post(session, receiver, "msg_2", headers={"Content-Type": "application/json"})
    receiver.fail_next(5, 503)
    receiver.answer_always(500)
    receiver.slow_down(5)
    receiver.down()
    receiver.close_port()
    receiver.reset()
    assert receiver.deliveries == receiver.rejected == receiver.attempts == [] and receiver.connections == 0
    started = time.monotonic()
    assert post(session, receiver, "msg_3").status_code == 200 and time.monotonic() - started < 1
    assert receiver.ids() == ["msg_3"]


def test_chunked_bodies_and_other_methods(receiver, session):
    body = event()
    r = session.post(receiver.url, data=iter([body[:10], body[10:]]), headers=signed("msg_1", body), timeout=5)
    assert r.status_code == 200 and receiver.deliveries[0].raw == body
    r = session.get(receiver.url, timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert receiver.rejected[0].reason.startswith("method GET")
    summary = session.get(receiver.url.replace("/hooks", "/_deliveries"), timeout=5).json()
    assert [d["id"] for d in summary["deliveries"]] == ["msg_1"] and len(summary["rejected"]) == 1


def test_main_prints_its_url_then_one_line_per_delivery():
    secret = new_secret()
    proc = subprocess.Popen([sys.executable, "-m", "standin.receiver", "--port", "0", "--secret", secret],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/hooks")
        body = event(lead_id=99)
        r = requests.post(url, data=body, headers=signed("msg_9", body, secret=secret), timeout=5)
        assert r.status_code == 200
        assert proc.stdout.readline().split() == ["lead.assigned", "id=msg_9", "lead=99"]
        r = requests.post(url, data=body, headers=signed("msg_9", body), timeout=5)  # the wrong secret
        assert r.status_code == 401
        assert proc.stderr.readline().startswith("rejected 401  id=msg_9  bad signature")
    finally:
        proc.terminate()
        proc.wait(timeout=5)
