"""Teams as the rest of Handoff sees them: each lead's channel, managers, rotation and SLA.

Without a routing file there is one team, made of the settings (HANDOFF_CHANNEL, MANAGER_IDS, ASSIGNMENT and
SALES_REP_IDS, the SLA settings): its id is None, and everything behaves as before teams existed. With one
(models/routing.py), each MQL is routed to a team when it crosses the threshold (`route`), its id is stored
on the lead (leads.team), and the lead's cards, reminders, escalations, rotation and SLA are its team's.
MANAGER_IDS stay managers of every team. docs/routing.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.routing import Routing, Rule
from models.sla import SlaPolicy

ROTATION = "round-robin"  # the name of the one team's rotation (assignment_state); a team's is ROTATION:ID


# Domains anyone can have an address at: a lead from one says nothing about their company.
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.jp", "ymail.com", "outlook.com", "outlook.jp",
    "hotmail.com", "hotmail.co.jp", "live.com", "live.jp", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com",
    "proton.me", "protonmail.com", "gmx.com", "gmx.net", "mail.com", "zoho.com", "yandex.com", "mail.ru",
    "qq.com", "163.com", "126.com", "naver.com", "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp",
    "i.softbank.jp", "ymobile.ne.jp", "nifty.com", "biglobe.ne.jp", "ocn.ne.jp", "so-net.ne.jp", "excite.co.jp",
})


def company_domain(email: str) -> str | None:
    """The part after `@`, lower-cased, unless anyone can have an address there (FREE_MAIL)."""
    domain = email.rpartition("@")[2].strip().lower()
    return domain if domain and "@" in email and domain not in FREE_MAIL else None


@dataclass(frozen=True)
class Team:
    id: str | None  # None: the one team of the settings
    name: str | None
    channel: str | None
    managers: tuple[str, ...]  # the team's own and MANAGER_IDS
    rotation: tuple[str, ...]  # the reps offered MQLs in turn (round-robin); empty: the channel claims
    reps: tuple[str, ...]  # its reps, whether or not they take turns
    claim_minutes: int  # business minutes from the MQL to the claim deadline
    contact_minutes: int  # ... and to the first-contact deadline
    # The reminder ladders, the same for every team (their steps fall at shares of each lead's own deadlines,
    # models/sla.py); None: no SLA timers (an import of history)
    sla: SlaPolicy | None
    next: str | None = None

    @property
    def rotation_name(self) -> str:
        return ROTATION if self.id is None else f"{ROTATION}:{self.id}"


@dataclass(frozen=True)
class AccountOwner:
    """Who claimed the latest lead from a company (models/ownership.py `account_owners`), and its team."""

    user: str
    team: str | None


@dataclass(frozen=True)
class Route:
    """Where an MQL goes and why: the rule it met, or the rep who owns its company's account."""

    team: Team
    rule: Rule | None = None
    owner: str | None = None  # the account owner it is offered to first

    @property
    def why(self) -> str:
        """As stored in leads.routed_by: `rule:N` or `account:U…`."""
        return f"account:{self.owner}" if self.owner else f"rule:{self.rule.number}" if self.rule else ""


class Teams:
    """Every team, from the settings and the routing file (None: the one team of the settings)."""

    def __init__(self, *, channel: str | None, managers: tuple[str, ...], rotation: tuple[str, ...],
                 reps: tuple[str, ...], claim_minutes: int, contact_minutes: int, sla: SlaPolicy | None, routing: Routing | None = None,
                 live: bool = True):
        """`live` False: an import of history (no channels, no rotation, no SLA timers)."""
        self.routing = routing
        self.everywhere = tuple(managers)
        self.default = Team(id=None, name=None, channel=channel if live else None, managers=self.everywhere,
                            rotation=rotation if live else (), reps=reps, claim_minutes=claim_minutes,
                            contact_minutes=contact_minutes, sla=sla if live else None)
        self.by_id: dict[str, Team] = {}
        for spec in (routing.teams.values() if routing is not None else ()):
            self.by_id[spec.id] = Team(
                id=spec.id, name=spec.name, channel=spec.channel if live else None,
                managers=tuple(dict.fromkeys([*spec.managers, *self.everywhere])),
                rotation=spec.reps if live and spec.assignment == "round-robin" else (), reps=spec.reps,
                claim_minutes=spec.sla_claim_minutes, contact_minutes=spec.sla_contact_minutes,
                sla=self.default.sla, next=spec.next)

    @classmethod
    def from_settings(cls, settings, live: bool = True) -> Teams:
        return cls(channel=settings.HANDOFF_CHANNEL, managers=tuple(settings.MANAGER_IDS),
                   rotation=settings.SALES_REP_IDS if settings.ASSIGNMENT == "round-robin" else (),
                   reps=tuple(settings.SALES_REP_IDS), claim_minutes=settings.SLA_CLAIM_MINUTES, contact_minutes=settings.SLA_CONTACT_MINUTES,
                   sla=SlaPolicy.from_settings(settings), routing=settings.routing, live=live)

    def get(self, team_id: str | None) -> Team:
        """The team of a stored lead. A team since removed from the routing file is served as the one of the
        settings (HANDOFF_CHANNEL, MANAGER_IDS), so its leads still reach someone."""
        return self.by_id.get(team_id, self.default) if team_id is not None else self.default

    def __iter__(self):
        return iter(self.by_id.values() if self.by_id else (self.default,))

    def route(self, lead: dict, owner: AccountOwner | None = None) -> Route:
        """The team an MQL goes to: its account owner's (offered to them first), else by the rules."""
        if self.routing is None:
            return Route(self.default)
        rule = self.routing.route(lead)
        if owner is not None:  # the team of the lead they claimed; the rules' when that one had none
            return Route(self.by_id.get(owner.team) or self.by_id[rule.team], rule=rule, owner=owner.user)
        return Route(self.by_id[rule.team], rule=rule)

    @property
    def account_owner_days(self) -> int:
        return self.routing.account_owner_days if self.routing is not None else 0

    def kpi_scope(self, team: str | None) -> dict:
        """models/kpi.py compute's team arguments: one team's report (with the handed-in keys when another team
        hands it its SQLs), or, with a routing file, every team's (`by_team`)."""
        if team is not None:
            return {"team": team, "receives": any(t.next == team for t in self.by_id.values())}
        return {"teams": tuple(self.by_id)} if self.routing is not None else {}

    def managed_by(self, user: str) -> list[str | None] | None:
        """The ids of the teams `user` manages; None for every team (MANAGER_IDS), [] for none."""
        if user in self.everywhere:
            return None
        return [team.id for team in self if user in team.managers]

    def manages(self, manager: str, rep: str) -> bool:
        """Whether `manager` manages every team, or one `rep` is a rep of."""
        managed = self.managed_by(manager)
        return managed is None or any(team.id in managed and rep in team.reps for team in self)

    def is_manager(self, user: str) -> bool:
        """A manager of any team (or of every team: MANAGER_IDS)."""
        return self.managed_by(user) != []
