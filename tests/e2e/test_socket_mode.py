"""Socket Mode end to end: the real `bot.py serve` with SLACK_APP_TOKEN set (and no signing secret), against the
Web API stand-in and the Socket Mode stand-in (standin/socket_mode.py), which sends envelopes the way Slack does
and records each acknowledgement. The webhook and /healthz keep serving on PORT meanwhile."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import parse_qs, parse_qsl

import pytest

from blocks.ids import ActionId
from blocks.texts import t
from models.tables import Lead
from standin import slack_requests
from standin.socket_mode import SocketModeStandIn
from tests.conftest import HANDOFF, HOOK_TOKEN, MANAGER, ROOT, wait_until
from tests.outbox.test_delivery_process import stop
from tests.outbox.test_outbox import serve, serve_env

pytestmark = pytest.mark.slow
REP = "UREP1"


@pytest.fixture
def socket_mode(slack):
    """Slack's Socket Mode endpoint, handed out by the Web API stand-in's apps.connections.open."""
    with SocketModeStandIn() as server:
        slack.socket_mode = server
        try:
            yield server
        finally:
            slack.socket_mode = None


def socket_env(db, slack, socket_mode) -> dict[str, str]:
    env = serve_env(db, slack)
    env.pop("SLACK_SIGNING_SECRET")  # Socket Mode needs none: requests come over the app's own connection
    env.update(SLACK_APP_TOKEN=socket_mode.app_token, MANAGER_IDS=MANAGER)
    return env


@pytest.fixture
def served(db, slack, socket_mode):
    env = socket_env(db, slack, socket_mode)
    proc = serve(env)
    try:
        yield env
    finally:
        stop(proc)


def http(env, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{env['PORT']}{path}", data=data, headers=headers or {},
                                 method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post_lead(env, email: str) -> int:
    status, body = http(env, "/hooks/leads", {"email": email, "score": 90},
                        {"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"})
    assert status == 201
    return body["id"]


def claimed_by(db, lead_id) -> str | None:
    with db.begin() as s:
        return s.get(Lead, lead_id).claimed_by


def card_ts(db, lead_id) -> str | None:
    with db.begin() as s:
        return s.get(Lead, lead_id).card_ts


def new_card(env, db, slack, email: str) -> tuple[int, str]:
    """A lead in by webhook on PORT, and its card posted: its id and the card's ts."""
    before = len(slack.calls_to("chat.postMessage"))
    lead_id = post_lead(env, email)
    assert len(slack.wait_calls("chat.postMessage", before + 1, timeout=20)) == before + 1
    ts = wait_until(lambda: card_ts(db, lead_id))
    assert ts
    return lead_id, ts


def click_payload(action_id: str, lead_id: int, user: str, ts: str) -> dict:
    """The interaction payload Slack sends for a button on the card (as the HTTP tests' form field)."""
    form = slack_requests.block_action(action_id, str(lead_id), user, HANDOFF, ts)
    return json.loads(parse_qs(form)["payload"][0])


def command_fields(text: str, user: str) -> dict:
    return dict(parse_qsl(slack_requests.slash_command("/kpi", text, user, HANDOFF)))


def acked_in_time(socket_mode, env_):
    ack = socket_mode.wait_ack(env_, timeout=5)
    assert ack is not None, f"{env_.type} envelope never acknowledged"
    assert ack.seconds < 3 and not ack.late and not env_.timed_out
    return ack


def test_the_app_connects_with_its_app_token_and_serves_port_meanwhile(served, slack, socket_mode):
    [conn] = socket_mode.wait_connections(1, timeout=10)
    assert conn.taking and socket_mode.refused == []
    opened = slack.calls_to("apps.connections.open")
    assert len(opened) == 1 and not [c for c in slack.rejected if c.method == "apps.connections.open"]
    status, health = http(served, "/healthz")
    assert status == 200 and health["ok"] is True
    # Slack's requests come over the socket only: there is no unsigned door on PORT
    status, _ = http(served, "/slack/events", {"type": "url_verification", "challenge": "x"})
    assert status == 404


def test_a_claim_click_is_acknowledged_and_updates_the_card(served, db, slack, socket_mode):
    socket_mode.wait_connections(1)
    lead_id, ts = new_card(served, db, slack, "claim@example.com")
    click = socket_mode.interaction(click_payload(ActionId.CLAIM, lead_id, REP, ts))
    ack = acked_in_time(socket_mode, click)
    assert ack.payload is None and not click.accepts_response_payload
    updates = slack.wait_calls("chat.update", 1, timeout=20)
    assert len(updates) == 1 and updates[0].params["ts"] == ts and updates[0].params["channel"] == HANDOFF
    assert f"<@{REP}>" in json.dumps(updates[0].params["blocks"])
    controls = [e["action_id"] for b in updates[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ActionId.CLAIM not in controls and ActionId.CONTACTED in controls
    with db.begin() as s:
        assert s.get(Lead, lead_id).claimed_by == REP
    assert socket_mode.problems == []


def test_kpi_week_answers_the_manager_in_the_ack(served, slack, socket_mode):
    socket_mode.wait_connections(1)
    command = socket_mode.command(command_fields("week", MANAGER))
    ack = acked_in_time(socket_mode, command)
    assert ack.shown, ack.problem  # Slack shows it to the manager: text and valid blocks
    assert ack.payload["text"] and ack.payload.get("response_type", "ephemeral") == "ephemeral"
    buttons = [e for b in ack.payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    [share] = [b for b in buttons if b["action_id"] == ActionId.KPI_SHARE]
    assert share["value"].startswith("week:")

    refused = socket_mode.command(command_fields("week", REP))
    assert acked_in_time(socket_mode, refused).payload == {"text": t("kpi.refused", "en")}
    assert slack.calls_to("chat.postMessage") == []  # nothing was said in the channel


def test_app_home_opened_publishes_app_home_once_even_when_redelivered(served, slack, socket_mode):
    socket_mode.wait_connections(1)
    body = json.loads(slack_requests.app_home_opened(REP))
    event = socket_mode.event(body)
    ack = acked_in_time(socket_mode, event)
    assert ack.payload is None
    published = slack.wait_calls("views.publish", 1, timeout=20)
    assert published[0].params["user_id"] == REP and published[0].params["view"]["type"] == "home"
    assert slack.homes[REP]["type"] == "home"
    # Slack delivers the same event again (a retry): acknowledged, and it takes effect once
    again = socket_mode.event(body, retry_attempt=1, retry_reason="timeout")
    acked_in_time(socket_mode, again)
    assert wait_until(lambda: http(served, "/healthz")[1]["outbox_pending"] == 0)
    assert len(slack.calls_to("views.publish")) == 1


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
def test_told_to_disconnect_the_app_reconnects_and_keeps_working(served, db, slack, socket_mode, reason):
    [first] = socket_mode.wait_connections(1)
    socket_mode.refresh(reason, close_after=60)  # the app has to move by itself, not wait to be cut off
    first_again, second = socket_mode.wait_connections(2, timeout=10)
    assert first_again is first and second.ticket != first.ticket
    assert len(slack.calls_to("apps.connections.open")) == 2
    assert socket_mode.wait_closed(first, timeout=10)

    lead_id, ts = new_card(served, db, slack, f"{reason}@example.com")  # the webhook served all along
    click = socket_mode.interaction(click_payload(ActionId.CLAIM, lead_id, REP, ts))
    assert acked_in_time(socket_mode, click).connection == second.id
    assert slack.wait_calls("chat.update", 1, timeout=20)
    command = socket_mode.command(command_fields("week", MANAGER))
    assert acked_in_time(socket_mode, command).shown
    assert socket_mode.problems == []


def test_sigterm_stops_taking_envelopes_then_finishes_the_acknowledged_work(db, slack, socket_mode):
    """A deploy right after a click was acknowledged: the connection is closed first (Slack sends nothing more
    to a process that is stopping), the click's work still finishes, and the process exits 0."""
    env = socket_env(db, slack, socket_mode)
    proc = serve(env)
    try:
        [conn] = socket_mode.wait_connections(1)
        lead_id, ts = new_card(env, db, slack, "deploy@example.com")
        acked_in_time(socket_mode, socket_mode.interaction(click_payload(ActionId.CLAIM, lead_id, REP, ts)))
        assert wait_until(lambda: claimed_by(db, lead_id) == REP)
        slack.slow_down("views.open", 5.0)  # the modal's Slack call is still running when the deploy comes
        acked_in_time(socket_mode, socket_mode.interaction(click_payload(ActionId.LOST, lead_id, REP, ts)))
        code = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    opened = slack.calls_to("views.open")
    assert len(opened) == 1 and opened[0].params["view"]["callback_id"] == "lead_lost"
    assert conn.closed_at is not None and conn.closed_at < opened[0].at


def test_a_refused_app_token_is_one_clear_line(db, slack, socket_mode):
    env = socket_env(db, slack, socket_mode)
    env["SLACK_APP_TOKEN"] = "xapp-1-A0OTHER-1-" + "0" * 64  # another app's, or revoked
    out = subprocess.run([sys.executable, "bot.py", "serve"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "SLACK_APP_TOKEN" in lines[-1] and "invalid_auth" in lines[-1]
    assert "Traceback" not in out.stderr
    assert socket_mode.connections == []
