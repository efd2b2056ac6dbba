"""The /kpi slash command (SPEC section 4). Answers are private (ephemeral) to the person who typed it;
reports carry a Share to channel button that posts the same report (same as-of instant) for everyone."""
from __future__ import annotations

import re
from datetime import timedelta

from blocks import digest as digest_blocks
from blocks import kpi as kpi_blocks
from blocks.ids import ActionId, BlockId, CallbackId
from blocks.texts import t
from handlers.errors import explained, reply_privately
from models.kpi import PeriodError, compute_with_previous, parse_period, period_containing
from models.outbox import Kind, enqueue
from models.outcomes import quality_by_source
from models.planning import PlanError, plan, set_target, targets
from models.tables import ActionItem

MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def _usage(lang: str, problem: str | None = None) -> dict:
    text = t("kpi.usage", lang)
    return {"text": f"{problem}\n\n{text}" if problem else text}


def kpi_answer(text: str, user: str, services) -> dict:
    """What /kpi says back (the keyword arguments of `ack`), for the words typed after it."""
    settings = services.settings
    lang = settings.LANGUAGE
    words = (text or "").split()
    if not settings.is_manager(user):
        return {"text": t("kpi.refused", lang)}
    if not words or words[0].lower() == "help":
        return _usage(lang)
    sub, rest, now, tz = words[0].lower(), words[1:], services.now(), settings.tz
    if sub in ("week", "month"):
        if len(rest) > 1:
            return _usage(lang, t("kpi.unknown", lang, word=" ".join(rest[1:])))
        try:
            period = parse_period(sub, rest[0] if rest else None, now, tz)
        except PeriodError as exc:
            return _usage(lang, t("kpi.bad_period", lang, text=str(exc), kind=t(f"kpi.{sub}", lang),
                                  example="2026-W47" if sub == "week" else "2026-11"))
        return report_answer(services, sub, period.label, now, share=True)
    if sub in ("rep", "source"):
        return breakdown_answer(services, sub, rest, now)
    if sub == "plan":
        return plan_answer(services, rest, now)
    if sub == "target":
        return target_answer(services, rest, user, now)
    return _usage(lang, t("kpi.unknown", lang, word=words[0]))


def report_answer(services, kind: str, label: str, as_of, share: bool, only=kpi_blocks.SECTIONS) -> dict:
    answer, _ = _report(services, kind, label, as_of, share, only)
    return answer


def _report(services, kind: str, label: str, as_of, share: bool, only) -> tuple[dict, dict]:
    """The answer's text and blocks, and the report they show."""
    settings = services.settings
    with services.db.begin() as session:
        report, previous = compute_with_previous(session, parse_period(kind, label, as_of, settings.tz), as_of,
                                                 settings.clock)
    value = f"{kind}:{label}:{as_of.isoformat()}" if share else None
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
        lines = [t("home.quality.line", lang, source=src, **q) for src, q in quality.items()]
        answer["blocks"].insert(-1, {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(
            [t("home.quality", lang)] + (lines or [t("kpi.none", lang)]))}})
        return answer
    if len(rest) > 1 or (rest and not MENTION.match(rest[0])):
        return _usage(lang, t("kpi.unknown", lang, word=" ".join(rest)))
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
        return _usage(lang, t(exc.key, lang, **exc.params))
    lines = [t("kpi.plan.result", lang, revenue=f"{p.revenue:,.0f}", deal=f"{p.deal_size:,.0f}", deals=p.deals,
               sqls=p.sqls, mqls=p.mqls),
             t("kpi.plan.rates", lang, win=kpi_blocks.pct(p.win_rate), m2s=kpi_blocks.pct(p.mql_to_sql_rate))]
    if p.win_from_actuals or p.mql_from_actuals:
        lines.append(t("kpi.plan.from_actuals", lang))
    return {"text": "\n".join(lines)}


def target_answer(services, rest: list[str], user: str, now) -> dict:
    settings = services.settings
    lang = settings.LANGUAGE
    month_label = period_containing("month", now, settings.tz).label
    if len(rest) == 3:
        try:
            month_label = parse_period("month", rest[2], now, settings.tz).label
        except PeriodError as exc:
            return _usage(lang, t("kpi.bad_period", lang, text=str(exc), kind=t("kpi.month", lang),
                                  example="2026-11"))
    if len(rest) in (2, 3):
        try:
            with services.db.begin() as session:
                set_target(session, month_label, rest[0].lower(), rest[1], user, now)
        except PlanError as exc:
            return _usage(lang, t(exc.key, lang, **exc.params))
    elif rest:
        return _usage(lang, t("kpi.unknown", lang, word=" ".join(rest)))
    with services.db.begin() as session:
        current = targets(session, month_label)
    lines = [t("kpi.target.line", lang, metric=k, value=kpi_blocks.pct(v) if k.endswith("rate") else f"{v:,.0f}")
             for k, v in sorted(current.items())]
    return {"text": t("kpi.target.list", lang, month=month_label) + "\n" + ("\n".join(lines) or t("kpi.none", lang))}


def register(app, services) -> None:
    @app.command("/kpi")
    def on_kpi(ack, command):
        ack(**kpi_answer(command.get("text", ""), command["user_id"], services))

    def ack_now(ack):
        ack()

    @explained(services)
    def share(body, action, context):
        kind, label, as_of = (action.get("value") or "::").split(":", 2)
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        if not services.settings.is_manager(user) or not channel:
            reply_privately(services, body, "kpi.refused", {})
            return
        with services.once(context) as session:
            if session is None:
                return
            enqueue(session, kind=Kind.REPORT, dedupe_key=f"share:{channel}:{kind}:{label}:{as_of}",
                    now=services.now(), channel=channel,
                    payload={"kind": kind, "label": label, "as_of": as_of, "user": user})
        services.notify()

    @explained(services)
    def open_item_modal(body, action, client):
        if not services.settings.is_manager(body["user"]["id"]):
            reply_privately(services, body, "notice.managers_only", {})
            return
        client.views_open(trigger_id=body["trigger_id"],
                          view=digest_blocks.item_modal(action.get("value") or "", services.settings.LANGUAGE))

    @app.view(CallbackId.RETRO_ITEM)
    def on_item_submit(ack, body, view, context):
        lang = services.settings.LANGUAGE
        text = (((view["state"]["values"].get(BlockId.ITEM) or {}).get("value") or {}).get("value") or "").strip()
        if not text:
            ack(response_action="errors", errors={BlockId.ITEM: t("retro.item_required", lang)})
            return
        label = view.get("private_metadata") or ""
        user = body["user"]["id"]
        if not services.settings.is_manager(user) or not re.fullmatch(r"\d{4}-\d{2}", label):
            ack(response_action="errors", errors={BlockId.ITEM: t("notice.managers_only", lang)})
            return
        with services.once(context) as session:
            if session is not None:
                session.add(ActionItem(retro_month=label, text=text[:500], added_by=user, added_at=services.now()))
        ack()

    app.action(ActionId.KPI_SHARE)(ack=ack_now, lazy=[share])
    app.action(ActionId.RETRO_ADD_ITEM)(ack=ack_now, lazy=[open_item_modal])
