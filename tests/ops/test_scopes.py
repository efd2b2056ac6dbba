"""Least privilege: manifest.yml asks for exactly the Slack scopes the code uses, derived from the source with
`ast` and mapped with the table the stand-in enforces and the doctor checks (ops/scopes.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ops import scopes

ROOT = scopes.ROOT


def test_the_manifest_asks_for_exactly_the_scopes_the_code_uses():
    needs = scopes.app_scopes()
    assert needs.problems == []
    asked = scopes.manifest_scopes()
    missing = sorted(needs.scopes - asked)
    extra = sorted(asked - needs.scopes)
    assert not missing, f"the code uses scopes manifest.yml does not ask for: {missing} ({needs.why})"
    assert not extra, f"manifest.yml asks for scopes the code does not use: {extra}"


def test_every_scope_in_the_manifest_says_what_it_is_for():
    lines = [line for line in (ROOT / "manifest.yml").read_text().splitlines() if line.strip().startswith("- ")]
    for scope in scopes.manifest_scopes():
        (line,) = [x for x in lines if x.strip().split()[1] == scope]
        assert "#" in line and len(line.split("#", 1)[1].strip()) > 10, scope


def test_the_derivation_finds_the_calls_the_app_makes():
    """Not vacuous: the calls we know are there are found, where they are."""
    used = scopes.methods_used()
    for method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.getPermalink", "views.open",
                   "views.publish", "files.getUploadURLExternal", "files.completeUploadExternal", "auth.test",
                   "conversations.join", "conversations.info", "users.info"):
        assert method in used.methods, method
    assert any(w.startswith("outbox/deliveries/chart.py:") for w in used.methods["files.completeUploadExternal"])
    assert any(w.startswith("outbox/sender.py:") for w in used.methods["conversations.join"])
    assert any(w.startswith("doctor.py:") for w in used.methods["users.info"])
    assert scopes.app_scopes().why["commands"] == ["features.slash_commands"]


def test_slack_sdk_client_methods_are_read_from_its_source():
    methods = scopes.client_methods()
    assert methods["chat_postMessage"] == {"chat.postMessage"}
    assert methods["files_upload_v2"] == {"files.getUploadURLExternal", "files.completeUploadExternal"}
    assert methods["conversations_join"] == {"conversations.join"}
    assert "api_call" not in methods


def test_each_form_of_call_is_seen():
    source = '''
def post(client):
    client.chat_postMessage(channel="C1", text="x")
    self.client.auth_test()
    client.api_call("users.info", params={"user": "U1"})
    client.api_call(api_method="conversations.info")
    send = client.chat_update
    getattr(client, "views_open")(trigger_id="t")
    client.files_upload_v2(channel="C1", file=b"")

def listener(ack, say):
    ack()
    say("hello")
'''
    derived = scopes.calls_in(source, "example.py")
    assert derived.problems == []
    assert set(derived.methods) == {"chat.postMessage", "auth.test", "users.info", "conversations.info",
                                    "chat.update", "views.open", "files.getUploadURLExternal",
                                    "files.completeUploadExternal"}
    assert set(derived.methods["chat.postMessage"]) == {"example.py:3", "example.py:13"}


def test_a_call_it_cannot_map_is_a_problem_not_a_silence():
    source = '''
def post(client, name):
    client.api_call(name)
    getattr(client, name)()
'''
    assert [p.split(": ", 1)[0] for p in scopes.calls_in(source, "x.py").problems] == ["x.py:3", "x.py:4"]
    why, unknown = scopes.scopes_for({"chat.postMessage", "reactions.add"})
    assert why == {"chat:write": ["chat.postMessage"]} and unknown == ["reactions.add"]


def test_a_client_that_forwards_every_call_is_not_a_call_of_its_own():
    """A subclass counting its calls forwards the method its caller named; only a forward of that very
    parameter is let through."""
    source = '''
class Counted(WebClient):
    def api_call(self, api_method, **kwargs):
        return super().api_call(api_method, **kwargs)

class Sneaky(WebClient):
    def api_call(self, api_method, **kwargs):
        return super().api_call(kwargs.pop("other"), **kwargs)
'''
    problems = scopes.calls_in(source, "c.py").problems
    assert [p.split(": ", 1)[0] for p in problems] == ["c.py:8"]


def test_an_unknown_method_in_the_app_fails_the_derivation(tmp_path):
    shutil.copy(ROOT / "manifest.yml", tmp_path / "manifest.yml")
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "react.py").write_text("def react(client):\n    client.reactions_add(name='eyes')\n")
    needs = scopes.app_scopes(tmp_path)
    assert len(needs.problems) == 1 and needs.problems[0].startswith("reactions.add (called at handlers/react.py:2)")


def test_an_event_whose_scope_is_unknown_fails_the_derivation():
    why, problems = scopes.feature_scopes({"settings": {"event_subscriptions": {"bot_events": ["reaction_added"]}},
                                           "features": {"shortcuts": [{"name": "x"}]}})
    assert why == {"commands": ["features.shortcuts"]}
    assert problems and "reaction_added" in problems[0]


def test_every_top_level_module_is_read_or_known_not_to_be_app_code():
    """A new package that calls Slack cannot slip past the derivation."""
    known = set(scopes.APP_CODE) | set(scopes.NOT_APP_CODE)
    found = {p.name for p in ROOT.glob("*.py")}
    found |= {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.rglob("*.py"))
              and p.name not in ("demo-output",) and not p.name.endswith(".egg-info")}
    assert found - known == set()
    assert all((ROOT / name).exists() for name in scopes.APP_CODE)


@pytest.mark.parametrize("method,kind,needed", [
    ("conversations.info", scopes.PRIVATE, ("groups:read",)),
    ("conversations.info", scopes.PUBLIC, ("channels:read",)),
    ("conversations.join", scopes.PUBLIC, ("channels:join",)),
    ("conversations.join", scopes.PRIVATE, ()),
    ("chat.postMessage", None, ("chat:write",)),
    ("views.publish", None, ()),
])
def test_needed_for(method, kind, needed):
    assert scopes.needed_for(method, kind) == needed


def test_app_files_are_the_real_files():
    files = scopes.app_files()
    assert ROOT / "outbox" / "sender.py" in files and ROOT / "bot.py" in files
    assert not any(Path(ROOT / "standin") in f.parents for f in files)
