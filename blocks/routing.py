"""The routing file in words: its mistakes, and the teams and rules `bot.py routing check` lists
(models/routing.py reads the file; docs/routing.md)."""
from __future__ import annotations

from blocks.texts import t
from models.routing import Condition, Routing, RoutingError, Rule, Team
from models.teams import company_domain


def mistakes(error: RoutingError, lang: str) -> list[str]:
    """One line per mistake: `FILE:LINE: what is wrong`."""
    return [f"{error.path}:{line}: {t(key, lang, **params)}" for line, key, params in error.problems]


def team_line(team: Team, lang: str) -> str:
    none = t("routing.none", lang)
    line = t("routing.team", lang, id=team.id, name=team.name, channel=team.channel,
             managers=" ".join(team.managers) or none, reps=" ".join(team.reps) or none,
             assignment=t(f"routing.assignment.{team.assignment}", lang), claim=team.sla_claim_minutes,
             contact=team.sla_contact_minutes)
    return line + (t("routing.team_next", lang, next=team.next) if team.next else "")


def condition_text(condition: Condition) -> str:
    if condition.op is not None:
        number = int(condition.number) if condition.number == int(condition.number) else condition.number
        return f"{condition.field} {condition.op}{number}"
    return f"{condition.field} = {' | '.join(str(v) for v in condition.values)}"


def rule_line(rule: Rule, routing: Routing, lang: str) -> str:
    when = ", ".join(condition_text(c) for c in rule.when) if rule.when else t("routing.every_lead", lang)
    return t("routing.rule", lang, number=rule.number, line=rule.line, when=when, team=rule.team,
             name=routing.teams[rule.team].name)


def check_lines(routing: Routing, lang: str) -> list[str]:
    """What `routing check` prints for a file without mistakes: its teams, the account owner, its rules."""
    days = routing.account_owner_days
    return [t("routing.file_ok", lang, path=routing.path, teams=len(routing.teams), rules=len(routing.rules)),
            t("routing.teams", lang), *(f"  {team_line(team, lang)}" for team in routing.teams.values()),
            t("routing.account_owner", lang, days=days) if days else t("routing.account_owner_off", lang),
            t("routing.rules", lang), *(f"  {rule_line(rule, routing, lang)}" for rule in routing.rules)]


def explain_lines(found, item, settings, lang: str) -> list[str]:
    """`routing explain`: `rule: N`, `team: ID`, `sla_claim_minutes: N`, `offered_first: U… | anyone`, and
    why (models/intake.py `explain`)."""
    route, routing = found.route, settings.routing
    rule, team = route.rule, route.team
    if route.owner is not None:
        why = t("routing.why.account", lang, user=route.owner, domain=company_domain(item.email),
                days=routing.account_owner_days, team=team.id)
        if found.owner_away:
            why += t("routing.why.owner_away", lang)
    else:
        when = ", ".join(condition_text(c) for c in rule.when) if rule.when else t("routing.every_lead", lang)
        why = t("routing.why.rule", lang, rule=rule.number, line=rule.line, when=when)
    if not found.is_mql:
        why += t("routing.why.not_mql", lang, score=item.score, threshold=settings.MQL_SCORE_THRESHOLD)
    return [f"rule: {rule.number}", f"team: {team.id}", f"sla_claim_minutes: {team.claim_minutes}",
            f"offered_first: {found.offered_first or 'anyone'}", f"why: {why}"]
