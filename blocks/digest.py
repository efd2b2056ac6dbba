"""The weekly digest and the monthly retro agenda, as Slack blocks."""
from __future__ import annotations

from blocks import kpi as kpi_blocks
from blocks.format import button, clip, escape, reason_label
from blocks.ids import ActionId, BlockId, CallbackId
from blocks.texts import t

ITEM_MAX = 500  # characters: the action item input's max_length, enforced again on submission


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 2900)}}


def _list(title: str, lines: list[str], lang: str) -> dict:
    return _section(title + "\n" + ("\n".join(lines) if lines else t("kpi.none", lang)))


def digest(report: dict, previous: dict, overdue: dict, lagging: dict[str, int], lang: str) -> tuple[str, list[dict]]:
    head = t("digest.title", lang, period=report["period"], **kpi_blocks.shown_days(report))
    parts = kpi_blocks.breakdowns(report, lang)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": clip(head, 150)}},
              _section("\n".join(kpi_blocks.headline(report, previous, lang))),
              *([_list(t("kpi.section.team", lang), parts["team"], lang)] if "by_team" in report else []),
              _list(t("kpi.section.source", lang), parts["source"], lang),
              _list(t("kpi.section.rep", lang), parts["rep"], lang),
              _list(t("kpi.section.lost", lang), parts["lost"], lang)]
    lines = []
    for lead_id, company, _owner, _due in overdue["unclaimed"]["leads"]:
        lines.append(t("digest.overdue.unclaimed", lang, company=escape(company or "—"), id=lead_id))
    for lead_id, company, owner, _due in overdue["no_contact"]["leads"]:
        lines.append(t("digest.overdue.contact", lang, company=escape(company or "—"), id=lead_id, user=owner))
    blocks.append(_list(t("digest.overdue", lang, unclaimed=overdue["unclaimed"]["total"],
                          contact=overdue["no_contact"]["total"]), lines, lang))
    blocks.append(_list(t("digest.no_outcome", lang),
                        [t("digest.no_outcome.line", lang, user=u, n=n) for u, n in lagging.items()], lang))
    return head, blocks


def retro(data: dict, advice: dict | None, well: dict, lang: str, threshold_setting: str) -> tuple[str, list[dict]]:
    r, prev = data["report"], data["previous"]
    head = t("retro.title", lang, period=r["period"])
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": clip(head, 150)}},
                          _section("\n".join(kpi_blocks.headline(r, prev, lang)))]
    if "by_team" in r:  # each team's first handoff, and the second handoff of each team that receives SQLs
        handoffs = [t("retro.handed_in", lang, team=escape(team), n=kpi_blocks.num(h["handed_in"]),
                      rate=kpi_blocks.pct(h["handed_in_claim_sla_rate"]), in_sla=kpi_blocks.num(h["handed_in_claimed_in_sla"]),
                      of=kpi_blocks.num(h["handed_in_claimed"]), median=kpi_blocks.num(h["median_handed_in_claim_minutes"]))
                    for team, h in (data.get("handoffs") or {}).items()]
        blocks.append(_list(t("kpi.section.team", lang), kpi_blocks.breakdowns(r, lang)["team"] + handoffs, lang))
    # 1. KPIs against targets
    lines = []
    for metric, target in sorted(data["targets"].items()):
        actual = r.get(metric)
        is_rate = metric.endswith("rate")
        shown = kpi_blocks.pct(actual) if is_rate else kpi_blocks.num(actual)
        goal = kpi_blocks.pct(target) if is_rate else f"{target:,.0f}"
        met = actual is not None and actual >= target
        lines.append(t("retro.target.line", lang, mark=":white_check_mark:" if met else ":x:", metric=metric,
                       actual=shown, target=goal))
    blocks.append(_list(t("retro.targets", lang), lines or [t("retro.targets.none", lang)], lang))
    # 2. What went well, 3. what did not
    good, bad = [], []
    if well["best_source"]:
        src, v = well["best_source"]
        good.append(t("retro.best_source", lang, source=escape(src), rate=kpi_blocks.pct(v["mql_to_sql_rate"]),
                      mqls=v["mqls"]))
    if well["worst_source"]:
        src, v = well["worst_source"]
        bad.append(t("retro.worst_source", lang, source=escape(src), rate=kpi_blocks.pct(v["mql_to_sql_rate"]),
                     mqls=v["mqls"]))
    for rep, n in well["sla_misses"]:
        bad.append(t("retro.sla_misses", lang, user=rep, n=n))
    for key, before, now, _rel in well["changes"]:
        fmt = kpi_blocks.pct if key.endswith("rate") else kpi_blocks.num
        line = t("retro.change", lang, metric=key, before=fmt(before), now=fmt(now))
        (good if now > before else bad).append(line)
    blocks.append(_list(t("retro.went_well", lang), good, lang))
    blocks.append(_list(t("retro.went_badly", lang), bad, lang))
    # 4. Reasons
    blocks.append(_section(t("retro.reasons", lang)))
    lost = [t("kpi.row.reason", lang, reason=reason_label(k, lang), n=v) for k, v in r["lost_reasons"].items()]
    unfit = [t("kpi.row.reason", lang, reason=reason_label(k, lang), n=v) for k, v in r["disqualify_reasons"].items()]
    blocks.append(_list(t("kpi.section.lost", lang), lost, lang))
    blocks.append(_list(t("kpi.section.disqualified", lang), unfit, lang))
    # 5. Score bands and the threshold
    bands = kpi_blocks.breakdowns(r, lang)["bands"]
    if advice is not None:
        rate = kpi_blocks.pct(advice["band_rate"])
        bands.append(t(f"retro.threshold.{advice['advice']}", lang, band=advice["band"], rate=rate,
                       overall=kpi_blocks.pct(advice["overall"]), mqls=advice["mqls"],
                       threshold=advice["threshold"], to=advice.get("to", advice["threshold"]),
                       setting=threshold_setting))
    blocks.append(_list(t("retro.bands", lang), bands, lang))
    # 6. Last month's action items, and room for this month's
    items = [t("retro.item", lang, text=escape(text), user=user) for text, user in data["last_items"]]
    blocks.append(_list(t("retro.last_items", lang), items, lang))
    blocks.append(_section(t("retro.new_items", lang)))
    blocks.append({"type": "actions", "block_id": BlockId.KPI_ACTIONS, "elements": [
        button(t("retro.add_item", lang), ActionId.RETRO_ADD_ITEM, r["period"], "primary")]})
    return head, blocks


def item_modal(label: str, lang: str) -> dict:
    return {
        "type": "modal", "callback_id": CallbackId.RETRO_ITEM, "private_metadata": label,
        "title": {"type": "plain_text", "text": clip(t("retro.modal.title", lang), 24)},
        "submit": {"type": "plain_text", "text": clip(t("retro.modal.submit", lang), 24)},
        "close": {"type": "plain_text", "text": clip(t("modal.cancel", lang), 24)},
        "blocks": [{"type": "input", "block_id": BlockId.ITEM, "label": {
            "type": "plain_text", "text": t("retro.modal.label", lang, period=label)},
            "element": {"type": "plain_text_input", "action_id": "value", "max_length": ITEM_MAX}}],
    }
