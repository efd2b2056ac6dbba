"""The /kpi slash command (docs/slack.md). Answers are private (ephemeral) to the person who typed it;
reports carry a Share to channel button that posts the same report (same as-of instant) for everyone."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from blocks import digest as digest_blocks
from blocks import kpi as kpi_blocks
from blocks.format import clip, escape
from blocks.ids import ActionId, BlockId, CallbackId
from blocks.outcome import state_value
from blocks.texts import t
from handlers.actions import StaleControl
from handlers.errors import answered_when_down, explained, reply_privately
from handlers.views import too_long
from models.kpi import PeriodError, compute_with_previous, parse_period, period_containing
from models.outbox import Kind, enqueue
from models.outcomes import quality_by_source
from models.planning import PlanError, plan, set_target, targets
from models.tables import ActionItem

MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def _usage(lang: str, problem: str | None = None) -> dict:
    text = t("kpi.usage", lang)
    return {"text": f"{problem}\n\n{text}" if problem else text}


def _echo(text: str) -> str:
    """What was typed, quoted back in an answer: inert, and short enough to read."""
    return escape(clip(text, 80))


def report_label(kind: str, text, now: datetime, tz) -> str:
    """A period label as we write it into a control ("2026-W48", "2026-11"), else StaleControl."""
    if kind not in ("week", "month") or not isinstance(text, str) or not text:
        raise StaleControl()
    try:
        label = parse_period(kind, text, now, tz).label
    except PeriodError:
        raise StaleControl() from None
    if label != text:
        raise StaleControl()
    return label


def share_of(value, now: datetime, tz) -> tuple[str, str, str, str | None]:
    """The Share button's value, `kind:label:as_of[|team]`, as we wrote it: a week or month, its label, the
    (past, offset-aware) instant the report was computed at, and the team it is about; else StaleControl.
    Nothing tampered reaches the outbox, where it could never be rendered."""
    value, _, team = (value or "").partition("|")
    kind, _, rest = value.partition(":")
    label, _, as_of = rest.partition(":")
    report_label(kind, label, now, tz)
    try:
        at = datetime.fromisoformat(as_of)
        if at.utcoffset() is None:
            raise StaleControl()
        at = at.astimezone(UTC)  # the report is computed in UTC: it must be representable there
    except (ValueError, OverflowError):
        raise StaleControl() from None
    if not datetime(1900, 1, 1, tzinfo=UTC) <= at <= now:
        raise StaleControl()
    return kind, label, as_of, team or None


def kpi_answer(text: str, user: str, services, context=None) -> dict:
    """What /kpi says back (the keyword arguments of `ack`), for the words typed after it. `context` names
    the request, so that a command that changes something takes effect once however often it is replayed."""
    settings = services.settings
    lang = settings.LANGUAGE
    words = (text or "").split()
    managed = services.teams.managed_by(user)  # None: every team (MANAGER_IDS); [...]: a team's manager
    if managed == []:
        return {"text": t("kpi.refused", lang)}
    if not words or words[0].lower() == "help":
        return _usage(lang)
    sub, rest, now, tz = words[0].lower(), words[1:], services.now(), settings.tz
    if sub in ("week", "month"):
        team = rest.pop() if rest and rest[-1] in services.teams.by_id else None  # `/kpi week [PERIOD] [TEAM]`
        if len(rest) > 1:
            return _usage(lang, t("kpi.unknown", lang, word=_echo(" ".join(rest[1:]))))
        try:
            period = parse_period(sub, rest[0] if rest else None, now, tz)
        except PeriodError as exc:
            if services.teams.routing is not None and re.fullmatch(r"[a-z0-9-]+", rest[0]):  # a team's id, mistyped
                return _usage(lang, t("kpi.unknown_team", lang, team=_echo(rest[0]),
                                      teams=", ".join(services.teams.by_id)))
            return _usage(lang, t("kpi.bad_period", lang, text=_echo(str(exc)), kind=t(f"kpi.{sub}", lang),
                                  example="2026-W47" if sub == "week" else "2026-11"))
        if managed is not None:  # a team's manager sees their team's report
            team = team or managed[0]
            if team not in managed:
                return {"text": t("kpi.refused_team", lang, teams=", ".join(str(m) for m in managed))}
        return report_answer(services, sub, period.label, now, share=True, team=team)
    if sub in ("rep", "source"):
        return breakdown_answer(services, sub, rest, now)
    if sub == "plan":
        return plan_answer(services, rest, now)
    if sub == "target":
        return target_answer(services, rest, user, now, context)
    return _usage(lang, t("kpi.unknown", lang, word=_echo(words[0])))


def report_answer(services, kind: str, label: str, as_of, share: bool, only=kpi_blocks.SECTIONS,
                  team: str | None = None) -> dict:
    answer, _ = _report(services, kind, label, as_of, share, only, team)
    return answer


def _report(services, kind: str, label: str, as_of, share: bool, only, team: str | None = None) -> tuple[dict, dict]:
    """The answer's text and blocks, and the report they show (`team`: one team's, docs/routing.md)."""
    settings = services.settings
    with services.db.begin() as session:
        report, previous = compute_with_previous(session, parse_period(kind, label, as_of, settings.tz), as_of,
                                                 settings.clock, **services.teams.kpi_scope(team))
    value = f"{kind}:{label}:{as_of.isoformat()}" + (f"|{team}" if team else "") if share else None
    text, blocks = kpi_blocks.blocks(report, previous, settings.LANGUAGE, value, only)
    return {"text": text, "blocks": blocks}, report


def breakdown_answer(services, sub: str, rest: list[str], now) -> dict:
    settings = services.settings
    lang = settings.LANGUAGE
    month_label = period_containing("month", now, settings.tz).label
    if sub == "source":
        answer = report_answer(services, "month", month_label, now, share=True, only=("source", "bands"))
        with services.db.begin() as session:
            quality = quality_by_source(session, now - timedelta(days=90))
        lines = [t("home.quality.line", lang, source=escape(src), **q) for src, q in quality.items()]
        answer["blocks"].insert(-1, {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(
            [t("home.quality", lang)] + (lines or [t("kpi.none", lang)]))}})
        return answer
    if len(rest) > 1 or (rest and not MENTION.match(rest[0])):
        return _usage(lang, t("kpi.unknown", lang, word=_echo(" ".join(rest))))
    answer, report = _report(services, "month", month_label, now, share=True, only=("rep",))
    if rest:
        rep = MENTION.match(rest[0]).group(1)
        mine = report["by_rep"].get(rep)
        line = t("kpi.rep.one", lang, user=rep, claimed=mine["claimed"], in_sla=mine["claimed_in_sla"],
                 median=kpi_blocks.num(mine["median_claim_minutes"])) if mine else t("kpi.rep.none", lang, user=rep)
        answer["blocks"] = [answer["blocks"][0], {"type": "section", "text": {"type": "mrkdwn", "text": line}}]
    return answer


def plan_answer(services, rest: list[str], now) -> dict:
    settings = services.settings
    lang = settings.LANGUAGE
    try:
        with services.db.begin() as session:
            p = plan(session, rest, now, settings.clock)
    except PlanError as exc:
        return _usage(lang, t(exc.key, lang, **_echoed(exc.params)))
    lines = [t("kpi.plan.result", lang, revenue=f"{p.revenue:,.0f}", deal=f"{p.deal_size:,.0f}", deals=p.deals,
               sqls=p.sqls, mqls=p.mqls),
             t("kpi.plan.rates", lang, win=kpi_blocks.pct(p.win_rate), m2s=kpi_blocks.pct(p.mql_to_sql_rate))]
    if p.win_from_actuals or p.mql_from_actuals:
        lines.append(t("kpi.plan.from_actuals", lang))
    return {"text": "\n".join(lines)}


def _echoed(params: dict) -> dict:
    """A PlanError's parameters, with what the person typed (`text`, `metric`) made inert."""
    return {k: _echo(v) if k in ("text", "metric") else v for k, v in params.items()}


def target_answer(services, rest: list[str], user: str, now, context=None) -> dict:
    settings = services.settings
    lang = settings.LANGUAGE
    month_label = period_containing("month", now, settings.tz).label
    if len(rest) == 3:
        try:
            month_label = parse_period("month", rest[2], now, settings.tz).label
        except PeriodError as exc:
            return _usage(lang, t("kpi.bad_period", lang, text=_echo(str(exc)), kind=t("kpi.month", lang),
                                  example="2026-11"))
    head = ""
    if len(rest) in (2, 3):
        try:
            # Once per request: the same signed request replayed later (a captured body, or a retry) finds it
            # done and changes nothing, even after someone else set another value since.
            with services.once(context) as session:
                if session is None:
                    head = t("notice.already_done", lang) + "\n"
                else:
                    set_target(session, month=month_label, metric=rest[0].lower(), value_text=rest[1], user=user,
                               now=now)
        except PlanError as exc:
            return _usage(lang, t(exc.key, lang, **_echoed(exc.params)))
    elif rest:
        return _usage(lang, t("kpi.unknown", lang, word=_echo(" ".join(rest))))
    with services.db.begin() as session:
        current = targets(session, month_label)
    lines = [t("kpi.target.line", lang, metric=k, value=kpi_blocks.pct(v) if k.endswith("rate") else f"{v:,.0f}")
             for k, v in sorted(current.items())]
    return {"text": head + t("kpi.target.list", lang, month=month_label) + "\n"
            + ("\n".join(lines) or t("kpi.none", lang))}


def register(app, services) -> None:
    @app.command("/kpi")
    @answered_when_down(services)
    def on_kpi(ack, command, context):
        ack(**kpi_answer(command.get("text", ""), command["user_id"], services, context))

    def ack_now(ack):
        ack()

    @explained(services)
    def share(body, action, context):
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        managed = services.teams.managed_by(user)
        if managed == [] or not channel:
            reply_privately(services, body, "kpi.refused", {})
            return
        kind, label, as_of, team = share_of(action.get("value"), services.now(), services.settings.tz)
        if team is not None and team not in services.teams.by_id:
            raise StaleControl()  # a team since removed from the routing file, or a tampered value
        if managed is not None and (team is None or team not in managed):
            reply_privately(services, body, "kpi.refused", {})
            return

        def attempt():
            with services.once(context) as session:
                if session is None:
                    return
                enqueue(session, kind=Kind.REPORT, dedupe_key=f"share:{channel}:{kind}:{label}:{as_of}:{team or ''}",
                        now=services.now(), channel=channel,
                        payload={"kind": kind, "label": label, "as_of": as_of, "user": user, "team": team})
        services.patiently(attempt)  # acknowledged already: applied once the database is back, or told
        services.notify()

    @explained(services)
    def open_item_modal(body, action, client):
        if not services.settings.is_manager(body["user"]["id"]):
            reply_privately(services, body, "notice.managers_only", {})
            return
        label = report_label("month", action.get("value"), services.now(), services.settings.tz)
        client.views_open(trigger_id=body["trigger_id"], view=digest_blocks.item_modal(label, services.settings.LANGUAGE))

    @app.view(CallbackId.RETRO_ITEM)
    def on_item_submit(ack, body, view, context):
        lang = services.settings.LANGUAGE
        text = state_value(view["state"]["values"], BlockId.ITEM, "value", "value")
        text = text.strip() if isinstance(text, str) else ""
        problem = t("retro.item_required", lang) if not text else too_long(text, digest_blocks.ITEM_MAX, lang)
        if problem:
            ack(response_action="errors", errors={BlockId.ITEM: problem})
            return
        user = body["user"]["id"]
        if not services.settings.is_manager(user):
            ack(response_action="errors", errors={BlockId.ITEM: t("notice.managers_only", lang)})
            return
        try:
            label = report_label("month", view.get("private_metadata"), services.now(), services.settings.tz)
        except StaleControl:
            ack(response_action="errors", errors={BlockId.ITEM: t("notice.stale_form", lang)})
            return
        with services.once(context) as session:
            if session is not None:
                session.add(ActionItem(retro_month=label, text=text, added_by=user, added_at=services.now()))
        ack()

    app.action(ActionId.KPI_SHARE)(ack=ack_now, lazy=[share])
    app.action(ActionId.RETRO_ADD_ITEM)(ack=ack_now, lazy=[open_item_modal])
