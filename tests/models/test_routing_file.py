"""The routing file (models/routing.py, docs/routing.md): what it may say, every mistake named with its line,
and which rule a lead meets."""
from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blocks.routing import mistakes as said
from models.routing import RoutingError, parse

EXAMPLE = textwrap.dedent("""\
    teams:
      inside-sales:                # team id: lower-case letters, digits, '-'
        name: インサイドセールス
        channel: C0ISALES
        managers: [U0MGR1]
        reps: [U0REP1, U0REP2]
        assignment: round-robin
        sla_claim_minutes: 60
        sla_contact_minutes: 240
        next: field-sales
      field-sales:
        channel: C0FSALES
        managers: [U0MGR2]
        reps: [U0REP7, U0REP8]
        sla_claim_minutes: 480
    account_owner_days: 180
    rules:
      - when: {score: ">=90", attributes.employees: ">=1000"}
        team: field-sales
      - when: {source: [webinar, seminar]}
        team: inside-sales
      - team: inside-sales
    """)


def read(text: str):
    return parse(textwrap.dedent(text), "routing.yml", sla_claim_minutes=240, sla_contact_minutes=1440)


def mistakes(text: str) -> list[tuple[int, str]]:
    """The file's mistakes as `routing check` says them in English, each with its line."""
    with pytest.raises(RoutingError) as refused:
        read(text)
    lines = said(refused.value, "en")
    assert all(line.startswith("routing.yml:") for line in lines)
    assert said(refused.value, "ja") != lines
    return [(int(line.split(":")[1]), line.split(": ", 1)[1]) for line in lines]


def test_the_example_reads_as_written():
    routing = read(EXAMPLE)
    inside, field = routing.teams["inside-sales"], routing.teams["field-sales"]
    assert (inside.name, inside.channel, inside.managers, inside.reps) == \
        ("インサイドセールス", "C0ISALES", ("U0MGR1",), ("U0REP1", "U0REP2"))
    assert (inside.assignment, inside.sla_claim_minutes, inside.sla_contact_minutes, inside.next) == \
        ("round-robin", 60, 240, "field-sales")
    # what a team leaves out: its id as its name, first click wins, the SLA settings, no next team
    assert (field.name, field.assignment, field.sla_claim_minutes, field.sla_contact_minutes, field.next) == \
        ("field-sales", "claim", 480, 1440, None)
    assert routing.account_owner_days == 180
    assert [(r.number, r.line, r.team) for r in routing.rules] == \
        [(1, 18, "field-sales"), (2, 20, "inside-sales"), (3, 22, "inside-sales")]


def test_the_first_rule_that_matches_wins():
    routing = read(EXAMPLE)
    assert routing.route({"score": 95, "attributes": {"employees": 5000}}).number == 1
    assert routing.route({"score": 95, "attributes": {"employees": "1000"}}).number == 1  # text holding a number
    assert routing.route({"score": 95, "attributes": {"employees": 999}, "source": "webinar"}).number == 2
    assert routing.route({"score": 95, "source": "SEMINAR"}).number == 2  # text compares case-insensitively
    assert routing.route({"score": 95}).number == 3  # a missing attribute compares false
    assert routing.route({"score": 95, "attributes": {"employees": "many"}}).number == 3  # so does text


@pytest.mark.parametrize(("when", "lead", "holds"), [
    ({"email_domain": "example.co.jp"}, {"email": "Taro@Example.CO.JP"}, True),
    ({"email_domain": "example.co.jp"}, {"email": "taro@sub.example.co.jp"}, False),  # exactly, not a suffix
    ({"email_domain": "example.co.jp"}, {}, False),
    ({"company": "ACME 株式会社"}, {"company": "acme 株式会社"}, True),
    ({"title": ["CEO", "CTO"]}, {"title": "cto"}, True),
    ({"title": ["CEO", "CTO"]}, {"title": "VP"}, False),
    ({"score": 80}, {"score": 80}, True),
    ({"score": 80}, {"score": "80"}, True),
    ({"score": "<50"}, {"score": 49}, True),
    ({"score": "<50"}, {"score": 50}, False),
    ({"score": "<=50"}, {"score": 50}, True),
    ({"score": ">50"}, {"score": 50}, False),
    ({"external_id": "crm-1"}, {"external_id": "CRM-1"}, True),
    ({"attributes.plan": True}, {"attributes": {"plan": "true"}}, True),
    ({"attributes.region": "kanto"}, {"attributes": None}, False),
])
def test_conditions(when, lead, holds):
    conditions = ", ".join(f'"{k}": {v!r}' if not isinstance(v, bool) else f'"{k}": {str(v).lower()}'
                           for k, v in when.items())
    routing = read(f"""\
        teams:
          a: {{channel: C0AAA}}
          b: {{channel: C0BBB}}
        rules:
          - when: {{{conditions}}}
            team: a
          - team: b
        """)
    assert (routing.route(lead).team == "a") is holds


@given(st.dictionaries(st.sampled_from(["score", "source", "company", "title", "email", "external_id"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=20)))
       | st.builds(dict, attributes=st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text()))))
def test_every_lead_meets_a_rule_and_never_breaks_matching(lead):
    assert read(EXAMPLE).route(lead).number in (1, 2, 3)


def test_every_mistake_is_named_with_its_line_at_once():
    assert mistakes("""\
        teams:
          Inside:
            channel: X1
          field-sales:
            channel: C0FSALES
            managers: [U0MGR2, bob]
            next: inside
          inside:
            channel: C0IS
            next: field-sales
            colour: red
        rules:
          - when: {score: ">=90", industry: x}
            team: field-sales
          - when: {source: webinar}
            team: nobody
        """) == [
        (2, "team id `Inside` must be lower-case letters, digits and '-' (at most 40)"),
        (3, ("channel `X1` of team `Inside` does not look like a Slack channel id (C or G and 2 or more "
            "capital letters or digits)")),
        (6, ("`bob` in `managers` does not look like a Slack user id (U or W and 2 or more capital letters "
            "or digits)")),
        (10, "`next` goes round in a cycle: field-sales → inside → field-sales"),
        (11, ("unknown key in team `inside`: `colour` (known: name, channel, managers, reps, assignment, "
             "sla_claim_minutes, sla_contact_minutes, next)")),
        (13, ("unknown field `industry` (known: source, score, company, title, email_domain, external_id, "
             "attributes.NAME)")),
        (15, "no rule matches every lead: the last rule must have no `when`"),
        (16, "rule 2 names a team that does not exist: `nobody`"),
    ]


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("teams: {a: {channel: C0AAA, next: b}}\nrules: [{team: a}]\n", 1, "`next` of team `a` names no team: `b`"),
    ("teams: {a: {channel: C0AAA, next: a}}\nrules: [{team: a}]\n", 1, "`next` goes round in a cycle: a → a"),
    ("teams: {a: {channel: C0AAA}}\nrules: [{team: a}]\ncolour: red\n", 3, "unknown key: `colour`"),
    ("teams: {a: {channel: C0AAA, managers: [U0MGR1, C0AAA]}}\nrules: [{team: a}]\n", 1,
     "`C0AAA` in `managers` does not look like a Slack user id"),
    ("teams: {a: {channel: U0MGR1}}\nrules: [{team: a}]\n", 1, "channel `U0MGR1` of team `a` does not look"),
    ("teams: {a: {channel: C0AAA, sla_claim_minutes: 0}}\nrules: [{team: a}]\n", 1,
     "`sla_claim_minutes` must be a whole number, at least 1"),
    ("teams: {a: {channel: C0AAA, assignment: random}}\nrules: [{team: a}]\n", 1,
     "`assignment` must be claim or round-robin, not `random`"),
    ("teams: {a: {channel: C0AAA}}\naccount_owner_days: -1\nrules: [{team: a}]\n", 2,
     "`account_owner_days` must be a whole number, at least 0"),
    ("teams: {a: {channel: C0AAA}}\nrules:\n  - when: {score: '>= lots'}\n    team: a\n  - team: a\n", 3,
     "`>= lots` is not a comparison"),
    ("teams: {a: {channel: C0AAA}}\nrules: []\n", 2, "`rules` must be a list of rules"),
    ("teams: {a: {channel: C0AAA}}\n", 1, "`rules` is missing"),
    ("rules: [{team: a}]\n", 1, "`teams` is missing"),
    ("teams: {a: {managers: [U0MGR1]}}\nrules: [{team: a}]\n", 1, "team `a` has no `channel`"),
    ("teams: {a: {channel: C0AAA}}\nrules:\n  - team: a\n  - team: a\n    team: a\n", 5, "`team` is given twice"),
    ("teams:\n  a: {channel: C0AAA\nrules: []\n", 3, "not valid YAML"),
    ("- just\n- a list\n", 1, "the file must be a mapping"),
])
def test_each_mistake(text, line, problem):
    found = mistakes(text)
    assert any(at == line and message.startswith(problem) for at, message in found), found
