"""/kpi: the report, its sharing and targets, and its errors (docs/slack.md, docs/kpi.md)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "kpi.usage": {
        "en": "*/kpi* — lead handoff KPIs (sales managers)\n"
              "• `/kpi week [2026-W47]` · `/kpi month [2026-11]` — the report for a period\n"
              "• `/kpi rep [@user]` · `/kpi source` — by rep, by source\n"
              "• `/kpi plan REVENUE DEAL_SIZE [WIN_RATE] [MQL_TO_SQL_RATE]` — MQLs needed for a revenue goal\n"
              "• `/kpi target METRIC VALUE [2026-12]` — set a monthly target (`/kpi target` lists them)\n"
              "• `/kpi help` — this message",
        "ja": "*/kpi* — リード引き渡しの KPI(営業マネージャー向け)\n"
              "• `/kpi week [2026-W47]` · `/kpi month [2026-11]` — 期間のレポート\n"
              "• `/kpi rep [@user]` · `/kpi source` — 担当者別・流入元別\n"
              "• `/kpi plan 売上目標 平均単価 [受注率] [MQL→SQL率]` — 目標に必要な MQL 数\n"
              "• `/kpi target 指標 値 [2026-12]` — 月次目標を設定(`/kpi target` で一覧)\n"
              "• `/kpi help` — このメッセージ",
    },
    "kpi.refused": {"en": "Sorry, /kpi is for sales managers. Ask a manager to add you to MANAGER_IDS if you need it.",
                    "ja": "申し訳ありません。/kpi は営業マネージャー専用です。必要な場合はマネージャーに MANAGER_IDS への追加を依頼してください。"},
    "kpi.unknown": {"en": "I did not understand `{word}`.", "ja": "`{word}` は認識できませんでした。"},
    "kpi.title": {"en": "*Handoff KPIs — {period}* ({start} to {end}, as of {as_of})",
                  "ja": "*Handoff KPI — {period}*({start} 〜 {end}、{as_of} 時点)"},
    "kpi.line.leads": {"en": "Leads {leads} · MQLs *{mqls}*{d}", "ja": "リード {leads} · MQL *{mqls}*{d}"},
    "kpi.line.claim": {"en": "Claimed within SLA *{rate}* ({n} of {of} claimed){d} · median {median} business min to claim",
                       "ja": "SLA内の担当 *{rate}*(担当 {of} 件中 {n} 件){d} · 担当までの中央値 営業時間 {median} 分"},
    "kpi.line.contact": {"en": "First contact within SLA *{rate}* ({n} of {of} contacted){d}",
                         "ja": "SLA内の初回コンタクト *{rate}*(コンタクト {of} 件中 {n} 件){d}"},
    "kpi.line.sql": {"en": "SQLs *{sqls}* · MQL→SQL *{rate}*{d}", "ja": "商談化 *{sqls}* · MQL→SQL *{rate}*{d}"},
    "kpi.line.won": {"en": "Won *{won}* · SQL→won *{rate}*{d}", "ja": "受注 *{won}* · SQL→受注 *{rate}*{d}"},
    "kpi.line.overdue": {"en": "Unclaimed past the deadline now: *{n}*", "ja": "現在、担当期限を過ぎた未担当: *{n}*"},
    "kpi.delta.pct": {"en": "({sign}{v}% vs previous)", "ja": "(前期比 {sign}{v}%)"},
    "kpi.delta.points": {"en": "({sign}{v} pt vs previous)", "ja": "(前期比 {sign}{v}pt)"},
    "kpi.section.source": {"en": "*By source* (MQLs · SQLs · MQL→SQL)", "ja": "*流入元別*(MQL · 商談化 · MQL→SQL)"},
    "kpi.section.rep": {"en": "*By rep* (claimed · within SLA · median min)", "ja": "*担当者別*(担当 · SLA内 · 中央値 分)"},
    "kpi.section.lost": {"en": "*Lost reasons*", "ja": "*失注理由*"},
    "kpi.section.disqualified": {"en": "*Not-a-fit reasons*", "ja": "*対象外の理由*"},
    "kpi.section.bands": {"en": "*Score bands* (MQLs · SQLs · MQL→SQL)", "ja": "*スコア帯別*(MQL · 商談化 · MQL→SQL)"},
    "kpi.row.source": {"en": "• {source}: {mqls} · {sqls} · {rate}", "ja": "• {source}: {mqls} · {sqls} · {rate}"},
    "kpi.row.rep": {"en": "• <@{user}>: {claimed} · {in_sla} · {median}", "ja": "• <@{user}>: {claimed} · {in_sla} · {median}"},
    "kpi.row.reason": {"en": "• {reason}: {n}", "ja": "• {reason}: {n}"},
    "kpi.row.band": {"en": "• {band}: {mqls} · {sqls} · {rate}", "ja": "• {band}: {mqls} · {sqls} · {rate}"},
    "kpi.none": {"en": "(none)", "ja": "(なし)"},
    "kpi.share": {"en": "Share to channel", "ja": "チャンネルに共有"},
    "kpi.shared_by": {"en": "Shared by <@{user}>", "ja": "<@{user}> さんが共有"},
    "kpi.bad_period": {"en": "`{text}` is not a {kind}; use e.g. {example}.",
                       "ja": "`{text}` は{kind}の指定として読めません。例: {example}"},
    "kpi.week": {"en": "week", "ja": "週"},
    "kpi.rep.one": {"en": "<@{user}> this month: {claimed} claimed, {in_sla} within SLA, median {median} business min to claim",
                    "ja": "<@{user}> さんの今月: 担当 {claimed} 件、SLA内 {in_sla} 件、担当までの中央値 営業時間 {median} 分"},
    "kpi.rep.none": {"en": "<@{user}> has claimed no MQL of this month yet.", "ja": "<@{user}> さんは今月の MQL をまだ担当していません。"},
    "kpi.plan.usage": {"en": "`/kpi plan` needs REVENUE and DEAL_SIZE, then optionally WIN_RATE and MQL_TO_SQL_RATE.",
                       "ja": "`/kpi plan` には売上目標と平均単価が必要です(受注率・MQL→SQL率は任意)。"},
    "kpi.plan.bad_number": {"en": "`{text}` is not an amount (e.g. 12000000, 12m, 1200万).",
                            "ja": "`{text}` は金額として読めません(例: 12000000、12m、1200万)。"},
    "kpi.plan.bad_rate": {"en": "`{text}` is not a rate between 0 and 1 (e.g. 0.25 or 25%).",
                          "ja": "`{text}` は 0〜1 の率として読めません(例: 0.25 または 25%)。"},
    "kpi.plan.amount_range": {"en": "`{text}` is out of range; amounts go from {min} to {max}.",
                              "ja": "`{text}` は範囲外です。金額は {min} から {max} までです。"},
    "kpi.plan.rate_range": {"en": "`{text}` is too small a rate; the smallest is {min}.",
                            "ja": "`{text}` は率として小さすぎます。最小は {min} です。"},
    "kpi.plan.no_actuals": {"en": "There is no {what} in the last 90 days to plan with; give it after DEAL_SIZE.",
                            "ja": "過去90日の実績から {what} を計算できません。平均単価の後に指定してください。"},
    "kpi.plan.result": {"en": "To reach *{revenue}* at *{deal}* per deal: *{deals}* deals ← *{sqls}* SQLs ← *{mqls}* MQLs.",
                        "ja": "売上 *{revenue}*(平均単価 *{deal}*)の達成には: 受注 *{deals}* 件 ← 商談 *{sqls}* 件 ← MQL *{mqls}* 件。"},
    "kpi.plan.rates": {"en": "Rates used: win {win} · MQL→SQL {m2s}", "ja": "使用した率: 受注率 {win} · MQL→SQL {m2s}"},
    "kpi.plan.from_actuals": {"en": "(Rates you left out come from the last 90 days' actuals.)",
                              "ja": "(省略した率は過去90日の実績値です。)"},
    "kpi.target.bad_metric": {"en": "`{metric}` has no target; use one of {metrics}.",
                              "ja": "`{metric}` には目標を設定できません。次のいずれか: {metrics}"},
    "kpi.target.list": {"en": "*Targets for {month}*", "ja": "*{month} の目標*"},
    "kpi.target.line": {"en": "• {metric}: {value}", "ja": "• {metric}: {value}"},
    "kpi.month": {"en": "month", "ja": "月"},
    "kpi.title.team": {"en": " · team {team}", "ja": " · チーム {team}"},
    "kpi.line.handed_in": {
        "en": ":arrow_forward: Handed in: {n} SQLs · taken within SLA {rate} ({in_sla} of {of}), median {median} "
              "business min{d}",
        "ja": ":arrow_forward: 引き継がれた SQL: {n} 件 · SLA 内の引き受け {rate}({of} 件中 {in_sla} 件)、中央値 {median} "
              "営業分{d}"},
    "kpi.section.team": {"en": "*By team*", "ja": "*チーム別*"},
    "kpi.row.team": {"en": "• {team}: {mqls} MQLs · claimed within SLA {rate} ({in_sla} of {claimed}) · {sqls} SQLs",
                     "ja": "• {team}: MQL {mqls} 件 · SLA 内の担当 {rate}({claimed} 件中 {in_sla} 件)· SQL {sqls} 件"},
    "kpi.unknown_team": {"en": "{team} is not a team of the routing file (teams: {teams}).",
                         "ja": "{team} はルーティングファイルのチームではありません(チーム: {teams})。"},
    "kpi.refused_team": {"en": "Sorry, /kpi shows you the teams you manage: {teams}.",
                         "ja": "申し訳ありません。/kpi で見られるのはあなたが管理するチームだけです: {teams}"},
}
