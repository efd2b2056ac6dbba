"""The KPI report as people read it: in Slack (blocks), in a terminal (text), and as CSV."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, timedelta

from blocks.format import button, clip, escape, reason_label
from blocks.ids import ActionId, BlockId
from blocks.texts import t
from models.kpi import change

MAX_ROWS = 12


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def num(value) -> str:
    return "—" if value is None else (f"{value:,.1f}" if isinstance(value, float) else f"{value:,}")


def _delta(now, before, lang: str, points: bool = False) -> str:
    if now is None or before is None:
        return ""
    if points:
        diff = (now - before) * 100
        return " " + t("kpi.delta.points", lang, sign="+" if diff >= 0 else "−", v=f"{abs(diff):.1f}")
    c = change(now, before)
    if c is None:
        return ""
    return " " + t("kpi.delta.pct", lang, sign="+" if c >= 0 else "−", v=f"{abs(c) * 100:.0f}")


def headline(r: dict, prev: dict | None, lang: str) -> list[str]:
    p = prev or {}
    return [
        t("kpi.line.leads", lang, leads=num(r["leads"]), mqls=num(r["mqls"]),
          d=_delta(r["mqls"], p.get("mqls"), lang)),
        t("kpi.line.claim", lang, rate=pct(r["claim_sla_rate"]), n=num(r["claimed_in_sla"]), of=num(r["claimed"]),
          median=num(r["median_claim_minutes"]), d=_delta(r["claim_sla_rate"], p.get("claim_sla_rate"), lang, True)),
        t("kpi.line.contact", lang, rate=pct(r["contact_sla_rate"]), n=num(r["contacted_in_sla"]),
          of=num(r["contacted"]), d=_delta(r["contact_sla_rate"], p.get("contact_sla_rate"), lang, True)),
        t("kpi.line.sql", lang, sqls=num(r["sqls"]), rate=pct(r["mql_to_sql_rate"]),
          d=_delta(r["mql_to_sql_rate"], p.get("mql_to_sql_rate"), lang, True)),
        t("kpi.line.won", lang, won=num(r["won"]), rate=pct(r["sql_to_won_rate"]),
          d=_delta(r["sql_to_won_rate"], p.get("sql_to_won_rate"), lang, True)),
        t("kpi.line.overdue", lang, n=num(r["overdue_unclaimed"])),
        *([t("kpi.line.handed_in", lang, n=num(r["handed_in"]), rate=pct(r["handed_in_claim_sla_rate"]),
             in_sla=num(r["handed_in_claimed_in_sla"]), of=num(r["handed_in_claimed"]),
             median=num(r["median_handed_in_claim_minutes"]),
             d=_delta(r["handed_in_claim_sla_rate"], p.get("handed_in_claim_sla_rate"), lang, True))]
          if "handed_in" in r else []),
    ]


def breakdowns(r: dict, lang: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    out["source"] = [t("kpi.row.source", lang, source=escape(src), mqls=v["mqls"], sqls=v["sqls"],
                       rate=pct(v["mql_to_sql_rate"]))
                     for src, v in sorted(r["by_source"].items(), key=lambda kv: -kv[1]["mqls"])[:MAX_ROWS]]
    out["rep"] = [t("kpi.row.rep", lang, user=rep, claimed=v["claimed"], in_sla=v["claimed_in_sla"],
                    median=num(v["median_claim_minutes"]))
                  for rep, v in sorted(r["by_rep"].items(), key=lambda kv: -kv[1]["claimed"])[:MAX_ROWS]]
    out["lost"] = [t("kpi.row.reason", lang, reason=reason_label(k, lang), n=v)
                   for k, v in list(r["lost_reasons"].items())[:MAX_ROWS]]
    out["disqualified"] = [t("kpi.row.reason", lang, reason=reason_label(k, lang), n=v)
                           for k, v in list(r["disqualify_reasons"].items())[:MAX_ROWS]]
    out["bands"] = [t("kpi.row.band", lang, band=b, mqls=v["mqls"], sqls=v["sqls"], rate=pct(v["mql_to_sql_rate"]))
                    for b, v in sorted(r["score_bands"].items(), reverse=True)]
    out["team"] = [t("kpi.row.team", lang, team=escape(team), mqls=v["mqls"], rate=pct(v["claim_sla_rate"]),
                     in_sla=v["claimed_in_sla"], claimed=v["claimed"], sqls=v["sqls"])
                   for team, v in (r.get("by_team") or {}).items()][:MAX_ROWS]
    return out


SECTIONS = ("source", "rep", "lost", "disqualified", "bands")


def sections(r: dict, only: tuple[str, ...] = SECTIONS) -> tuple[str, ...]:
    """The breakdowns to show: with teams (a routing file), the report over all teams has one per team first."""
    return (("team",) if "by_team" in r and only == SECTIONS else ()) + only


def shown_days(r: dict) -> dict[str, str]:
    """The period as people say it: first and last local day (the report's `end` is the exclusive instant)."""
    last = date.fromisoformat(r["end"][:10]) - timedelta(days=1)
    return {"start": r["start"][:10], "end": last.isoformat()}


def title(r: dict, lang: str) -> str:
    head = t("kpi.title", lang, period=r["period"], **shown_days(r), as_of=r["as_of"][:16].replace("T", " "))
    return head + (t("kpi.title.team", lang, team=escape(r["team"])) if r.get("team") else "")


def text(r: dict, prev: dict | None, lang: str) -> str:
    """The whole report as plain text (the CLI's --format text)."""
    lines = [title(r, lang), ""] + [f"  {x}" for x in headline(r, prev, lang)]
    parts = breakdowns(r, lang)
    for name in sections(r):
        lines += ["", t(f"kpi.section.{name}", lang)]
        lines += [f"  {x}" for x in parts[name]] or [f"  {t('kpi.none', lang)}"]
    plain_text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", "\n".join(lines)).replace("*", "")  # no mrkdwn
    return html.unescape(plain_text)


def blocks(r: dict, prev: dict | None, lang: str, share_value: str | None = None,
           only: tuple[str, ...] = SECTIONS) -> tuple[str, list[dict]]:
    """Slack blocks for the report; with `share_value`, a Share to channel button."""
    head = title(r, lang)
    out: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}},
                       {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(headline(r, prev, lang))}}]
    parts = breakdowns(r, lang)
    for name in sections(r, only):
        body = "\n".join(parts[name]) or t("kpi.none", lang)
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(
            f"{t(f'kpi.section.{name}', lang)}\n{body}", 2900)}})
    if share_value:
        out.append({"type": "actions", "block_id": BlockId.KPI_ACTIONS, "elements": [
            button(t("kpi.share", lang), ActionId.KPI_SHARE, share_value)]})
    return head, out


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as a formula (OWASP)
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value) -> str | int | float:
    """A value as a CSV cell a spreadsheet shows as written and never runs: a text cell that starts like a
    formula (`=HYPERLINK(…)`, `@SUM(…)`, `-2+3`, a tab or CR) and is not a number gets a leading `'`
    (OWASP's CSV injection rule); numbers, -3 and -0.5 included, stay numbers."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_START) and not NUMBER.fullmatch(text):
        return "'" + text
    return text


def to_csv(r: dict) -> str:
    """One row per number: metric, key, field, value (nested breakdowns flattened). Every cell goes through
    `csv_cell`: sources, reasons and rep ids come from outside."""
    buf = io.StringIO()
    w = csv.writer(buf)

    def row(*cells) -> None:
        w.writerow([csv_cell(c) for c in cells])

    row("metric", "key", "field", "value")
    for k, v in r.items():
        if isinstance(v, dict):
            for key, inner in v.items():
                if isinstance(inner, dict):
                    for field, value in inner.items():
                        row(k, key, field, value)
                else:
                    row(k, key, "", inner)
        else:
            row(k, "", "", v)
    return buf.getvalue()
