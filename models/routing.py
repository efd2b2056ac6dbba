"""The routing file (`ROUTING_FILE`): teams, and the rules that send each MQL to one of them.

Read and checked once, at start (settings.py) and by `bot.py routing check`; everything here is pure: no
database, no Slack. What a team does with its leads (its channel, people, assignment and SLA) is applied
where leads are handed off; the account owner, which needs the stored leads, is models/ownership.py's.
docs/routing.md is the reference for the file's format and for every message below.

A file with mistakes is refused as a whole, naming every mistake with its line (counting from 1), so that
a typo in a channel id is found at start rather than when a card silently goes nowhere.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

TEAM_ID_RE = re.compile(r"^[a-z0-9-]{1,40}$")  # stored on each lead (leads.team)
USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
CHANNEL_RE = re.compile(r"^[CG][A-Z0-9]{2,}$")
COMPARISON_RE = re.compile(r"^\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
FIELDS = ("source", "score", "company", "title", "email_domain", "external_id")  # and attributes.NAME
TOP_KEYS = ("teams", "account_owner_days", "rules")
TEAM_KEYS = ("name", "channel", "managers", "reps", "assignment", "sla_claim_minutes", "sla_contact_minutes",
             "next")
RULE_KEYS = ("when", "team")
ASSIGNMENTS = ("claim", "round-robin")


class RoutingError(ValueError):
    """The file's mistakes, each `(line, catalog key, parameters)` (blocks/texts/routing.py says them)."""

    def __init__(self, path: str, problems: list[Problem]):
        self.path, self.problems = path, sorted(problems, key=lambda p: p[0])
        lines = sorted({line for line, _, _ in self.problems})
        super().__init__(f"{path}: {len(self.problems)} mistake(s), on line(s) {', '.join(map(str, lines))}")


Problem = tuple[int, str, dict]


class Problems(list):
    """The mistakes found so far, each at the line of a node (or a line)."""

    def add(self, at: Node | int, key: str, **params) -> None:
        self.append((at if isinstance(at, int) else line_of(at), f"routing.{key}", params))


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    channel: str
    managers: tuple[str, ...]
    reps: tuple[str, ...]
    assignment: str  # "claim" (first click wins) or "round-robin"
    sla_claim_minutes: int
    sla_contact_minutes: int
    next: str | None
    line: int


@dataclass(frozen=True)
class Condition:
    """One `when` entry: the lead's `field` against `values` (any of them) or a numeric comparison."""

    field: str
    values: tuple[Any, ...] = ()
    op: str | None = None
    number: float | None = None

    def __post_init__(self):
        # What `holds` compares with, ready once: the texts case-folded, the numbers as floats, and the test
        # itself as one function of the lead (a rule file's conditions run rules × leads times per batch).
        numbers = frozenset(float(v) for v in self.values if isinstance(v, int | float) and not isinstance(v, bool))
        texts = frozenset(text_of(v).casefold() for v in self.values if not (isinstance(v, int | float)
                                                                             and not isinstance(v, bool)))
        name = self.field
        if self.op is not None:
            compare, bound = COMPARE[self.op], self.number

            def test(seen: Seen) -> bool:
                number = seen.number(name)
                return number is not None and compare(number, bound)
        elif not numbers:
            def test(seen: Seen) -> bool:
                return seen.text(name) in texts
        else:
            def test(seen: Seen) -> bool:
                return seen.text(name) in texts or seen.number(name) in numbers
        object.__setattr__(self, "test", test)

    def holds(self, lead: dict | Seen) -> bool:
        return self.test(lead if type(lead) is Seen else Seen(lead))


class Seen:
    """A lead as the rules see it: each field read, case-folded and parsed once, however many rules ask."""

    __slots__ = ("_numbers", "_texts", "lead")

    def __init__(self, lead: dict):
        self.lead, self._texts, self._numbers = lead, {}, {}

    def text(self, name: str) -> str | None:
        if name not in self._texts:
            value = field_value(self.lead, name)
            self._texts[name] = None if value is None else text_of(value).casefold()
        return self._texts[name]

    def number(self, name: str) -> float | None:
        if name not in self._numbers:
            self._numbers[name] = as_number(field_value(self.lead, name))
        return self._numbers[name]


@dataclass(frozen=True)
class Rule:
    number: int  # counting from 1, as `routing explain` names it
    line: int
    team: str
    when: tuple[Condition, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "tests", tuple(c.test for c in self.when))

    def matches(self, lead: dict | Seen) -> bool:
        seen = lead if type(lead) is Seen else Seen(lead)
        return all(test(seen) for test in self.tests)


@dataclass(frozen=True)
class Routing:
    teams: dict[str, Team]
    rules: tuple[Rule, ...]
    account_owner_days: int = 0
    path: str = ""
    text: str = field(default="", repr=False)

    def route(self, lead: dict) -> Rule:
        """The first rule that matches the lead (the last rule matches every lead: `load` makes sure)."""
        seen = Seen(lead)
        for rule in self.rules:  # loops, not generators: this runs rules × leads times per batch
            for test in rule.tests:
                if not test(seen):
                    break
            else:
                return rule
        raise AssertionError("the last rule matches every lead")

    def teams_of(self, user: str) -> list[Team]:
        """The teams whose managers or reps name `user`."""
        return [t for t in self.teams.values() if user in t.managers or user in t.reps]


COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


# Lead fields ------------------------------------------------------------------------------------------
def field_value(lead: dict, name: str) -> Any:
    """The value a rule sees for `name` in a lead as the webhook takes it (a dict with its fields and
    `attributes`); None when it has none."""
    if name.startswith("attributes."):
        attributes = lead.get("attributes") or {}
        return attributes.get(name.removeprefix("attributes.")) if isinstance(attributes, dict) else None
    if name == "email_domain":
        email = lead.get("email") or ""
        return email.rpartition("@")[2].strip().lower() or None if "@" in email else None
    return lead.get(name)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def equal(value: Any, wanted: Any) -> bool:
    """A lead's value against one value of a rule: numbers as numbers, text case-insensitively."""
    if value is None:
        return False
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        number = as_number(value)
        return number is not None and number == float(wanted)
    return text_of(value).casefold() == text_of(wanted).casefold()


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


# Reading the file ---------------------------------------------------------------------------------------
def load(path: str | Path, sla_claim_minutes: int, sla_contact_minutes: int) -> Routing:
    """Read and check the routing file; raises RoutingError naming every mistake (and OSError when the
    file cannot be read). The SLA minutes are the defaults of a team that sets none."""
    text = Path(path).read_text(encoding="utf-8")
    return parse(text, str(path), sla_claim_minutes, sla_contact_minutes)


def parse(text: str, path: str, sla_claim_minutes: int, sla_contact_minutes: int) -> Routing:
    problems = Problems()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problems.add(mark.line + 1 if mark is not None else 1, "yaml", detail=getattr(exc, "problem", None) or exc)
        raise RoutingError(path, problems) from None
    if not isinstance(root, MappingNode):
        problems.add(root if root is not None else 1, "not_mapping")
        raise RoutingError(path, problems)
    top = entries(root, problems, TOP_KEYS, "unknown_key")
    teams = read_teams(top.get("teams"), problems, sla_claim_minutes, sla_contact_minutes, root)
    days = 0
    if "account_owner_days" in top:
        days = whole_number(top["account_owner_days"][1], "account_owner_days", problems, least=0) or 0
    rules = read_rules(top.get("rules"), teams, problems, root)
    check_next(teams, top.get("teams"), problems)
    if problems:
        raise RoutingError(path, problems)
    return Routing(teams={t.id: t for t in teams}, rules=tuple(rules), account_owner_days=days, path=path,
                   text=text)


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


def entries(node: MappingNode, problems: Problems, allowed: tuple[str, ...] | None = None,
            unknown: str = "", **where) -> dict[str, tuple[Node, Node]]:
    """A mapping's entries by key: (key node, value node). A key that is not text, is given twice or (with
    `allowed`) is not one of them is a problem (`unknown` the catalog key, `where` its other parameters)."""
    out: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, ScalarNode) else None
        if not isinstance(name, str) or not name:
            problems.add(key, "not_a_name")
        elif allowed is not None and name not in allowed:
            problems.add(key, unknown, name=name, known=", ".join(allowed), **where)
        elif name in out:
            problems.add(key, "twice", name=name)
        else:
            out[name] = (key, value)
    return out


def value_of(node: Node) -> Any:
    """A scalar node's value as YAML's safe loader types it (int, float, bool, None or str); None for a list
    or a mapping."""
    if not isinstance(node, ScalarNode):
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def whole_number(node: Node, name: str, problems: Problems, least: int) -> int | None:
    value = value_of(node)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        problems.add(node, "whole_number", name=name, least=least)
        return None
    return value


def user_ids(node: Node, name: str, problems: Problems) -> tuple[str, ...]:
    if not isinstance(node, SequenceNode):
        problems.add(node, "id_list", name=name)
        return ()
    ids = []
    for item in node.value:
        value = value_of(item)
        if isinstance(value, str) and USER_RE.fullmatch(value):
            ids.append(value)
        else:
            problems.add(item, "bad_user", value=value, name=name)
    return tuple(ids)


def read_teams(entry: tuple[Node, Node] | None, problems: Problems, sla_claim: int, sla_contact: int,
               root: Node) -> list[Team]:
    if entry is None:
        problems.add(root, "no_teams")
        return []
    key, node = entry
    if not isinstance(node, MappingNode) or not node.value:
        problems.add(key, "teams_not_mapping")
        return []
    teams = []
    for team_id, (id_node, body) in entries(node, problems).items():
        if not TEAM_ID_RE.fullmatch(team_id):  # the team's body is still checked: every mistake named at once
            problems.add(id_node, "bad_team_id", team=team_id)
        if not isinstance(body, MappingNode):
            problems.add(id_node, "team_not_mapping", team=team_id)
            continue
        # kept even with mistakes (the file is refused anyway), so that rules and `next` naming it are not
        # reported as naming no team
        teams.append(read_team(team_id, id_node, body, problems, sla_claim, sla_contact))
    return teams


def read_team(team_id: str, id_node: Node, body: MappingNode, problems: Problems, sla_claim: int,
              sla_contact: int) -> Team:
    keys = entries(body, problems, TEAM_KEYS, "unknown_team_key", team=team_id)
    channel = value_of(keys["channel"][1]) if "channel" in keys else None
    if "channel" not in keys:
        problems.add(id_node, "no_channel", team=team_id)
    elif not isinstance(channel, str) or not CHANNEL_RE.fullmatch(channel):
        problems.add(keys["channel"][1], "bad_channel", value=channel, team=team_id)
    name = value_of(keys["name"][1]) if "name" in keys else team_id
    if name is None or isinstance(name, bool) or not str(name).strip():
        problems.add(keys["name"][1], "bad_name", team=team_id)
    managers = user_ids(keys["managers"][1], "managers", problems) if "managers" in keys else ()
    reps = user_ids(keys["reps"][1], "reps", problems) if "reps" in keys else ()
    assignment = value_of(keys["assignment"][1]) if "assignment" in keys else "claim"
    if assignment not in ASSIGNMENTS:
        problems.add(keys["assignment"][1], "bad_assignment", value=assignment)
    elif assignment == "round-robin" and not reps:
        problems.add(keys["assignment"][1], "no_reps", team=team_id)
    claim = (whole_number(keys["sla_claim_minutes"][1], "sla_claim_minutes", problems, least=1)
             if "sla_claim_minutes" in keys else sla_claim)
    contact = (whole_number(keys["sla_contact_minutes"][1], "sla_contact_minutes", problems, least=1)
               if "sla_contact_minutes" in keys else sla_contact)
    nxt = value_of(keys["next"][1]) if "next" in keys else None
    if "next" in keys and not isinstance(nxt, str):
        problems.add(keys["next"][1], "bad_next", team=team_id)
    return Team(id=team_id, name=str(name).strip(), channel=channel if isinstance(channel, str) else "",
                managers=managers, reps=reps, assignment=assignment if assignment in ASSIGNMENTS else "claim",
                sla_claim_minutes=claim or sla_claim, sla_contact_minutes=contact or sla_contact,
                next=nxt if isinstance(nxt, str) else None, line=line_of(id_node))


def check_next(teams: list[Team], entry: tuple[Node, Node] | None, problems: Problems) -> None:
    """Every `next` names a team, and following `next` from any team never comes back to it."""
    by_id = {t.id: t for t in teams}
    next_lines: dict[str, int] = {}
    if entry is not None and isinstance(entry[1], MappingNode):
        for id_node, body in entry[1].value:
            for key, value in body.value if isinstance(body, MappingNode) else ():
                if isinstance(key, ScalarNode) and key.value == "next":
                    next_lines[id_node.value] = line_of(value)
    for team in teams:
        if team.next is not None and team.next not in by_id:
            problems.add(next_lines.get(team.id, team.line), "unknown_next", team=team.id, next=team.next)
    reported: set[frozenset[str]] = set()
    for team in teams:
        seen, at = [], team.id
        while at is not None and at in by_id and at not in seen:
            seen.append(at)
            at = by_id[at].next
        if at is not None and at in seen:
            cycle = seen[seen.index(at):]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                problems.add(next_lines.get(cycle[-1], by_id[cycle[-1]].line), "cycle",
                             cycle=" → ".join([*cycle, at]))


def read_rules(entry: tuple[Node, Node] | None, teams: list[Team], problems: Problems,
               root: Node) -> list[Rule]:
    if entry is None:
        problems.add(root, "no_rules")
        return []
    key, node = entry
    if not isinstance(node, SequenceNode) or not node.value:
        problems.add(key, "rules_not_list")
        return []
    known = {t.id for t in teams}
    rules = []
    for number, item in enumerate(node.value, start=1):
        if not isinstance(item, MappingNode):
            problems.add(item, "rule_not_mapping", number=number)
            continue
        keys = entries(item, problems, RULE_KEYS, "unknown_rule_key", number=number)
        team = value_of(keys["team"][1]) if "team" in keys else None
        if "team" not in keys:
            problems.add(item, "rule_no_team", number=number)
        elif not isinstance(team, str) or team not in known:
            problems.add(keys["team"][1], "rule_unknown_team", number=number, team=team)
            team = None
        when = read_when(keys["when"][1], number, problems) if "when" in keys else ()
        if team is not None and when is not None:
            rules.append(Rule(number=number, line=line_of(item), team=team, when=when))
    last = node.value[-1]
    if isinstance(last, MappingNode) and any(isinstance(k, ScalarNode) and k.value == "when" for k, _ in last.value):
        problems.add(last, "no_catch_all")
    return rules


def read_when(node: Node, number: int, problems: Problems) -> tuple[Condition, ...] | None:
    if not isinstance(node, MappingNode) or not node.value:
        problems.add(node, "bad_when", number=number)
        return None
    conditions, before = [], len(problems)
    for name, (key, value) in entries(node, problems).items():
        if name not in FIELDS and not (name.startswith("attributes.") and len(name) > len("attributes.")):
            problems.add(key, "unknown_field", name=name, known=", ".join([*FIELDS, "attributes.NAME"]))
            continue
        condition = read_condition(name, value, problems)
        if condition is not None:
            conditions.append(condition)
    return tuple(conditions) if len(problems) == before else None


def read_condition(name: str, node: Node, problems: Problems) -> Condition | None:
    if isinstance(node, SequenceNode):
        values = [value_of(item) for item in node.value]
        if not values:
            problems.add(node, "no_values", name=name)
            return None
        if any(v is None for v in values):
            problems.add(node, "bad_values", name=name)
            return None
        return Condition(field=name, values=tuple(values))
    value = value_of(node)
    if value is None:
        problems.add(node, "bad_value", name=name)
        return None
    if isinstance(value, str) and (match := COMPARISON_RE.fullmatch(value)):
        return Condition(field=name, op=match.group(1), number=float(match.group(2)))
    if isinstance(value, str) and value.lstrip()[:1] in ("<", ">"):
        problems.add(node, "bad_comparison", value=value)
        return None
    return Condition(field=name, values=(value,))
