"""The Slack stand-in, driven through slack_sdk's WebClient: it must refuse what Slack refuses about scopes,
channels and people, the way Slack refuses it (standin/server.py; the scope table is ops/scopes.py)."""
from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from ops import scopes
from tests.conftest import HANDOFF

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.fixture
def client(slack):
    return WebClient(token="xoxb-test", base_url=slack.url, retry_handlers=[])


def refused(call, **kwargs):
    """Slack's answer (a SlackResponse) to a call it refuses."""
    with pytest.raises(SlackApiError) as raised:
        call(**kwargs)
    return raised.value.response


def header(response, name: str) -> str | None:
    return next((v for k, v in response.headers.items() if k.lower() == name), None)


# Scopes ---------------------------------------------------------------------------------------------------
def test_the_token_has_the_manifests_scopes_and_every_answer_says_so(slack, client):
    assert slack.scopes == set(scopes.manifest_scopes()) and "chat:write" in slack.scopes
    answer = client.auth_test()
    assert header(answer, "x-oauth-scopes").split(",") == sorted(scopes.manifest_scopes())
    assert header(answer, "x-accepted-oauth-scopes") is None  # auth.test needs no scope
    answer = client.chat_postMessage(channel=HANDOFF, text="hi")
    assert header(answer, "x-accepted-oauth-scopes") == "chat:write"
    info = client.conversations_info(channel=HANDOFF)
    assert set(header(info, "x-accepted-oauth-scopes").split(",")) == {
        "channels:read", "groups:read", "im:read", "mpim:read"}
    slack.delete_channel("C0GONE1")
    gone = refused(client.conversations_info, channel="C0GONE1")
    assert gone["error"] == "channel_not_found" and header(gone, "x-oauth-scopes")  # refusals carry them too


def test_a_call_without_its_scope_is_missing_scope_naming_needed_and_provided(slack, client):
    slack.set_scopes({"chat:write", "commands"})
    answer = refused(client.files_upload_v2, channel=HANDOFF, file=PNG, filename="chart.png")
    assert answer["error"] == "missing_scope" and answer["needed"] == "files:write"
    assert answer["provided"] == "chat:write,commands"
    assert slack.files == [] and [c.method for c in slack.rejected] == ["files.getUploadURLExternal"]
    assert refused(client.users_info, user="U0HANDOFF")["needed"] == "users:read"
    assert refused(client.conversations_join, channel=HANDOFF)["needed"] == "channels:join"
    client.chat_postMessage(channel=HANDOFF, text="chat:write is enough for this")


def test_conversations_info_needs_the_scope_of_the_channels_kind(slack, client):
    slack.add_channel("GSECRET1", name="secret")
    slack.set_scopes({"chat:write", "channels:read"})
    assert client.conversations_info(channel=HANDOFF)["channel"]["is_private"] is False
    answer = refused(client.conversations_info, channel="GSECRET1")
    assert answer["error"] == "missing_scope" and answer["needed"] == "groups:read"
    slack.set_scopes({"chat:write", "groups:read"})
    assert client.conversations_info(channel="GSECRET1")["channel"]["name"] == "secret"
    assert refused(client.conversations_info, channel=HANDOFF)["needed"] == "channels:read"


def test_every_scope_in_the_table_is_enforced_for_the_methods_the_standin_serves(slack, client):
    """The table the doctor and the least-privilege test use is the one the stand-in enforces."""
    slack.set_scopes(set())
    enforced = 0
    for method, needed in scopes.METHOD_SCOPES.items():
        if needed is None or not hasattr(slack, "_m_" + method.replace(".", "_")):
            continue
        args = {"users": "UAIKO1"} if method == "conversations.open" else {"channel": HANDOFF, "user": "U0HANDOFF"}
        answer = refused(client.api_call, api_method=method, json=args)
        assert answer["error"] == "missing_scope", method
        assert set(answer["needed"].split(",")) <= set(scopes.accepted(method)), method
        enforced += 1
    assert enforced >= 7


# Channels ---------------------------------------------------------------------------------------------------
def test_a_public_channel_the_bot_is_not_in(slack, client):
    slack.add_channel("C0NEW", name="new-leads", member=False)
    assert refused(client.chat_postMessage, channel="C0NEW", text="x")["error"] == "not_in_channel"
    assert refused(client.chat_postEphemeral, channel="C0NEW", user="U1", text="x")["error"] == "not_in_channel"
    slack.set_scopes(slack.default_scopes | {"chat:write.public"})
    client.chat_postMessage(channel="C0NEW", text="chat:write.public lets a message in")
    assert refused(client.chat_postEphemeral, channel="C0NEW", user="U1", text="x")["error"] == "not_in_channel"
    answer = refused(client.files_upload_v2, channel="C0NEW", file=PNG, filename="chart.png")
    assert answer["error"] == "not_in_channel" and slack.files == []  # an upload needs membership
    assert client.conversations_info(channel="C0NEW")["channel"]["is_member"] is False


def test_joining_a_public_channel_makes_the_bot_a_member(slack, client):
    slack.add_channel("C0NEW", name="new-leads", member=False)
    joined = client.conversations_join(channel="C0NEW")
    assert joined["channel"]["is_member"] is True and "warning" not in joined.data
    assert slack.is_member("C0NEW")
    client.chat_postMessage(channel="C0NEW", text="in")
    client.files_upload_v2(channel="C0NEW", file=PNG, filename="chart.png")
    assert slack.files[0]["channel"] == "C0NEW"
    again = client.conversations_join(channel="C0NEW")
    assert again["warning"] == "already_in_channel"


def test_joining_what_cannot_be_joined(slack, client):
    slack.add_channel("C0OLD", archived=True, member=False)
    assert refused(client.conversations_join, channel="C0OLD")["error"] == "is_archived"
    slack.add_channel("C0PRIV", private=True, member=True)
    assert refused(client.conversations_join, channel="C0PRIV")["error"] == "method_not_supported_for_channel_type"
    slack.add_channel("C0HIDDEN", private=True, member=False)
    assert refused(client.conversations_join, channel="C0HIDDEN")["error"] == "channel_not_found"
    assert refused(client.conversations_join, channel="D0AIKO")["error"] == "method_not_supported_for_channel_type"
    slack.delete_channel("C0GONE")
    assert refused(client.conversations_join, channel="C0GONE")["error"] == "channel_not_found"
    assert not slack.is_member("C0HIDDEN")


def test_a_private_channel_is_hidden_from_a_bot_not_in_it(slack, client):
    slack.add_channel("C0PRIV", name="deals", private=True, member=False)
    slack.remove_bot("GLEGACY1")
    for channel in ("C0PRIV", "GLEGACY1"):
        assert refused(client.chat_postMessage, channel=channel, text="x")["error"] == "channel_not_found"
        assert refused(client.conversations_info, channel=channel)["error"] == "channel_not_found"
        assert refused(client.files_upload_v2, channel=channel, file=PNG, filename="c.png")["error"] == \
            "invalid_channel"
    slack.add_channel("C0PRIV", private=True, member=True)  # invited
    client.chat_postMessage(channel="C0PRIV", text="in")
    info = client.conversations_info(channel="C0PRIV")["channel"]
    assert (info["name"], info["is_private"], info["is_member"], info["is_channel"]) == ("deals", True, True, True)


def test_conversations_info_describes_the_channel(slack, client):
    slack.add_channel("C0SALES", name="sales-handoff")
    slack.archive_channel("C0SALES")
    info = client.conversations_info(channel="C0SALES")["channel"]
    assert info["id"] == "C0SALES" and info["name"] == "sales-handoff"
    assert (info["is_archived"], info["is_private"], info["is_member"]) == (True, False, True)
    assert client.conversations_info(channel="GGROUP1")["channel"]["is_group"] is True
    assert refused(client.conversations_info, channel="not-an-id")["error"] == "channel_not_found"


def test_the_older_helpers_still_work_and_reset_restores_everything(slack, client):
    slack.archive_channel("C0A")
    slack.delete_channel("C0B")
    slack.remove_bot("C0C")
    slack.set_scopes({"commands"})
    slack.set_scopes(slack.default_scopes)
    assert refused(client.chat_postMessage, channel="C0A", text="x")["error"] == "is_archived"
    assert refused(client.chat_postMessage, channel="C0B", text="x")["error"] == "channel_not_found"
    assert refused(client.chat_postMessage, channel="C0C", text="x")["error"] == "not_in_channel"
    slack.add_channel("C0D", private=True, member=False)
    slack.add_user("UAIKO1", name="aiko")
    slack.set_scopes({"commands"})
    slack.reset()
    assert slack.scopes == set(slack.default_scopes)
    for channel in ("C0A", "C0B", "C0C", "C0D"):
        client.chat_postMessage(channel=channel, text="back to normal")
    assert refused(client.users_info, user="UAIKO1")["error"] == "user_not_found"


# People -----------------------------------------------------------------------------------------------------
def test_users_info(slack, client):
    slack.add_user("UAIKO1", name="aiko")
    slack.add_user("UKEN1", name="ken")
    slack.deactivate_user("UKEN1")
    aiko = client.users_info(user="UAIKO1")["user"]
    assert (aiko["id"], aiko["name"], aiko["deleted"], aiko["is_bot"]) == ("UAIKO1", "aiko", False, False)
    assert client.users_info(user="UKEN1")["user"]["deleted"] is True
    assert client.users_info(user="U0HANDOFF")["user"]["is_bot"] is True  # the bot itself (auth.test's user_id)
    assert refused(client.users_info, user="UNOBODY1")["error"] == "user_not_found"
