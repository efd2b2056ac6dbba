"""The Socket Mode stand-in (standin/socket_mode.py) speaks Slack's protocol: it is driven here by slack_sdk's own
SocketModeClient (the client Bolt's SocketModeHandler runs in `bot.py serve`), and by raw WebSockets where a
rule is about what a client must not be able to do."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from standin.socket_mode import SocketModeStandIn
from tests.conftest import wait_until

EVENT = {"type": "event_callback", "event_id": "Ev0001", "api_app_id": "A0HANDOFF", "team_id": "T0DEMO",
         "event": {"type": "app_home_opened", "user": "U0REP", "tab": "home", "event_ts": "1.000001"}}
COMMAND = {"command": "/kpi", "text": "week", "user_id": "U0MANAGER", "channel_id": "C0HANDOFF",
           "team_id": "T0DEMO", "trigger_id": "1.2.abc", "response_url": "https://hooks.slack.invalid/commands/1"}
CLICK = {"type": "block_actions", "user": {"id": "U0REP"}, "trigger_id": "1.2.def", "team": {"id": "T0DEMO"},
         "actions": [{"action_id": "lead_claim", "block_id": "lead_actions", "value": "1", "type": "button"}]}
SUBMISSION = {"type": "view_submission", "user": {"id": "U0REP"}, "trigger_id": "1.2.ghi",
              "view": {"id": "V1", "type": "modal", "callback_id": "lead_lost", "state": {"values": {}}}}


@pytest.fixture
def make_server(slack):
    """A Socket Mode stand-in behind the Web API stand-in (the latest one made answers apps.connections.open)."""
    made = []

    def factory(**kw) -> SocketModeStandIn:
        server = SocketModeStandIn(**kw).start()
        slack.socket_mode = server
        made.append(server)
        return server

    yield factory
    slack.socket_mode = None
    for server in made:
        server.stop()


class Official:
    """slack_sdk's SocketModeClient, acknowledging each request with what `answer` returns (None: no ack)."""

    def __init__(self, slack, server: SocketModeStandIn, answer=None, **kw):
        self.requests: list[SocketModeRequest] = []
        self.messages: list[dict] = []  # every message the client read (hello, envelopes)
        self.answer = answer or (lambda req: SocketModeResponse(envelope_id=req.envelope_id))
        self.client = SocketModeClient(app_token=server.app_token, web_client=WebClient(base_url=slack.url), **kw)
        self.client.message_listeners.append(lambda client, message, raw: self.messages.append(message))
        self.client.socket_mode_request_listeners.append(self._on_request)

    def _on_request(self, client, req: SocketModeRequest) -> None:
        self.requests.append(req)
        response = self.answer(req)
        if response is not None:
            client.send_socket_mode_response(response)

    def got(self, env) -> SocketModeRequest:
        return next(r for r in self.requests if r.envelope_id == env.envelope_id)


@pytest.fixture
def official(slack):
    made = []

    def factory(server, answer=None, **kw) -> Official:
        client = Official(slack, server, answer, **kw)
        made.append(client)
        client.client.connect()
        return client

    yield factory
    for client in made:
        client.client.close()


def open_url(slack, token: str) -> str:
    return WebClient(base_url=slack.url).apps_connections_open(app_token=token)["url"]


def first_messages(urls: list[str]) -> list[dict | int]:
    """Connect a raw WebSocket to each URL in turn, all held open together: the first message each got, or the
    HTTP status its handshake was refused with."""
    async def run():
        async with aiohttp.ClientSession() as session:
            sockets, got = [], []
            for url in urls:
                try:
                    ws = await session.ws_connect(url)
                except aiohttp.WSServerHandshakeError as refused:
                    got.append(refused.status)
                    continue
                sockets.append(ws)
                got.append(json.loads((await ws.receive(timeout=5)).data))
            for ws in sockets:
                await ws.close()
            return got
    return asyncio.run(run())


def test_only_the_app_level_token_opens_a_connection_and_it_opens_nothing_else(slack, make_server):
    server = make_server()
    web = WebClient(base_url=slack.url)
    for token, error in (("xoxb-test", "not_allowed_token_type"), ("xoxp-user", "not_allowed_token_type"),
                         ("xapp-1-A0OTHER-1-" + "0" * 64, "invalid_auth")):
        with pytest.raises(SlackApiError) as refused:
            web.apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error, token
    with pytest.raises(SlackApiError) as refused:
        web.api_call("apps.connections.open")
    assert refused.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as refused:
        WebClient(token=server.app_token, base_url=slack.url).chat_postMessage(channel="C0HANDOFF", text="hi")
    assert refused.value.response["error"] == "not_allowed_token_type"

    url = web.apps_connections_open(app_token=server.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{server.port}/link/?ticket=") and url.endswith("&app_id=A0HANDOFF")
    assert server.connections == []  # a URL is not a connection yet
    assert [c.method for c in slack.rejected] == ["apps.connections.open"] * 4 + ["chat.postMessage"]


def test_a_url_opens_one_connection_and_only_while_fresh(slack, make_server):
    server = make_server()
    url = open_url(slack, server.app_token)
    [hello] = first_messages([url])
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0HANDOFF"} and hello["debug_info"]["approximate_connection_time"]
    assert first_messages([url]) == [401]  # used already
    assert first_messages([url.replace("ticket=", "ticket=0")]) == [401]  # never issued
    server.ticket_seconds = 0
    assert first_messages([open_url(slack, server.app_token)]) == [401]  # expired
    assert server.refused == ["a ticket that was never issued or was used already"] * 2 + ["an expired ticket"]
    assert len(server.connections) == 1


def test_an_eleventh_connection_is_told_too_many_websockets(slack, make_server):
    server = make_server()
    got = first_messages([open_url(slack, server.app_token) for _ in range(11)])
    assert [m["type"] for m in got] == ["hello"] * 10 + ["disconnect"]
    assert [m["num_connections"] for m in got[:10]] == list(range(1, 11))
    assert got[10]["reason"] == "too_many_websockets"


def test_the_official_client_gets_hello_and_acknowledges_each_kind_of_envelope(slack, make_server, official):
    server = make_server()

    def answer(req):
        if req.type == "slash_commands":
            return SocketModeResponse(envelope_id=req.envelope_id, payload={"text": f"report for {req.payload['text']}"})
        return SocketModeResponse(envelope_id=req.envelope_id)

    client = official(server, answer)
    [conn] = server.wait_connections(1)
    assert len(slack.calls_to("apps.connections.open")) == 1
    assert wait_until(lambda: client.messages) and client.messages[0]["type"] == "hello"
    event, command, click = server.event(EVENT), server.command(COMMAND), server.interaction(CLICK)
    for env in (event, command, click):
        ack = server.wait_ack(env, 5)
        assert ack is not None and not ack.late and ack.problem is None and ack.connection == conn.id
        assert 0 <= ack.seconds < 3
    assert event.ack.payload is None and click.ack.payload is None
    assert command.ack.payload == {"text": "report for week"} and command.ack.shown
    # what the client was handed is what Slack sends
    assert client.got(event).payload == EVENT and client.got(event).retry_attempt == 0
    assert client.got(event).retry_reason == "" and not client.got(event).accepts_response_payload
    assert client.got(command).payload == COMMAND and client.got(command).accepts_response_payload
    assert client.got(click).payload == CLICK and not client.got(click).accepts_response_payload
    assert client.got(click).retry_attempt is None  # only Events API envelopes carry retries
    assert server.problems == [] and not any(e.timed_out for e in server.envelopes)


def test_acks_slack_would_not_use_are_recorded(make_server, official):
    server = make_server()

    def answer(req):
        if req.type == "events_api":
            return SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "events take none"})
        if req.type == "slash_commands":
            return SocketModeResponse(envelope_id=req.envelope_id, payload={"blocks": [{"type": "nonsense"}]})
        return {"envelope_id": req.envelope_id, "payload": {"response_action": "close"}}

    client = official(server, answer)
    server.wait_connections(1)
    event, command, submission = server.event(EVENT), server.command(COMMAND), server.interaction(SUBMISSION)
    assert server.wait_ack(event).problem == "events_api envelopes take no response payload"
    assert server.wait_ack(command).problem.startswith("invalid_blocks: must provide a valid block type")
    assert server.wait_ack(submission).problem == "response_action must be errors, update, push or clear"
    assert not any(e.ack.shown for e in (event, command, submission))
    assert submission.accepts_response_payload  # a view submission may answer with a response_action

    client.client.send_message("ok")
    client.client.send_socket_mode_response({"envelope_id": "no-such-envelope"})
    client.client.send_socket_mode_response({"envelope_id": event.envelope_id})
    assert wait_until(lambda: len(server.problems) == 3)
    assert server.problems == ["not JSON: 'ok'", "an ack for an unknown envelope 'no-such-envelope'",
                               f"a second ack for envelope {event.envelope_id}"]


def test_an_event_not_acknowledged_in_time_is_sent_again_and_a_late_click_is_not(make_server, official):
    server = make_server(ack_seconds=0.3, retry_delays=(0.0, 0.0, 0.0))

    def answer(req):
        if req.type == "events_api" and req.retry_attempt == 0:
            return None  # the app lost it
        if req.type == "interactive":
            time.sleep(0.6)  # an app too slow for the ack window
        return SocketModeResponse(envelope_id=req.envelope_id)

    client = official(server, answer)
    server.wait_connections(1)
    event = server.event(EVENT)
    retry = server.wait_retry(event, 5)
    assert retry is not None and event.timed_out and event.ack is None
    assert (retry.retry_attempt, retry.retry_reason, retry.payload) == (1, "timeout", EVENT)
    assert retry.envelope_id != event.envelope_id
    assert server.wait_ack(retry) is not None and not retry.ack.late and retry.retry is None
    seen = [r for r in client.requests if r.type == "events_api"]
    assert [(r.retry_attempt, r.retry_reason) for r in seen] == [(0, ""), (1, "timeout")]

    click = server.interaction(CLICK)
    ack = server.wait_ack(click, 5)
    assert ack.late and ack.seconds > 0.3 and click.timed_out and click.retry is None


def test_an_event_never_acknowledged_is_retried_three_times(make_server, official):
    server = make_server(ack_seconds=0.1, retry_delays=(0.0, 0.0, 0.0))
    client = official(server, lambda req: None)
    server.wait_connections(1)
    env = server.event(EVENT)
    attempts = [env]
    for _ in range(3):
        attempts.append(server.wait_retry(attempts[-1], 5))
        assert attempts[-1] is not None
    assert [e.retry_attempt for e in attempts] == [0, 1, 2, 3]
    assert wait_until(lambda: all(e.timed_out for e in attempts))
    assert attempts[-1].retry is None  # three retries, then Slack gives up
    assert sorted(r.retry_attempt for r in client.requests) == [0, 1, 2, 3]


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
def test_told_to_disconnect_the_official_client_moves_to_a_new_connection(slack, make_server, official, reason):
    server = make_server(close_after=60)  # the client must close the old connection itself
    official(server)
    [first] = server.wait_connections(1)
    assert server.refresh(reason) == [first]
    first_gone, second = server.wait_connections(2)
    assert first_gone is first and first.disconnect_reason == reason and second.ticket != first.ticket
    assert len(slack.calls_to("apps.connections.open")) == 2  # a new URL for the new connection
    assert server.wait_closed(first, 10)
    env = server.event(EVENT)
    assert server.wait_ack(env).connection == second.id
    assert server.open_connections() == [second] and server.problems == []


def test_a_dropped_connection_is_replaced(slack, make_server, official):
    server = make_server()
    official(server, ping_interval=0.2)  # the client checks its connection this often
    [first] = server.wait_connections(1)
    server.drop()
    assert server.wait_closed(first)
    _, second = server.wait_connections(2, timeout=10)
    env = server.event(EVENT)
    assert server.wait_ack(env).connection == second.id


def test_an_envelope_waits_for_a_connection_and_gives_up(make_server):
    from standin.socket_mode import NoConnection

    server = make_server()
    with pytest.raises(NoConnection):
        server.event(EVENT, wait=0.2)
    assert server.envelopes == []
