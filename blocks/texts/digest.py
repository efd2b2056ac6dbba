"""The weekly digest and its chart."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "digest.title": {"en": "Weekly handoff digest — {period} ({start} to {end})",
                     "ja": "週次ハンドオフ・ダイジェスト — {period}({start} 〜 {end})"},
    "digest.overdue": {"en": "*Overdue now*: {unclaimed} unclaimed past the deadline, {contact} without first contact",
                       "ja": "*現在の期限切れ*: 未担当 {unclaimed} 件、初回コンタクトなし {contact} 件"},
    "digest.overdue.unclaimed": {"en": "• {company} (#{id}) — unclaimed", "ja": "• {company}(#{id})— 未担当"},
    "digest.overdue.contact": {"en": "• {company} (#{id}) — <@{user}>, no contact yet",
                               "ja": "• {company}(#{id})— <@{user}> さん、コンタクト未記録"},
    "digest.no_outcome": {"en": "*Leads left without an outcome* (contacted, no SQL/won/lost/not-a-fit after the reminder)",
                          "ja": "*結果が未記録のリード*(コンタクト後、リマインド期間を過ぎても結果なし)"},
    "digest.no_outcome.line": {"en": "• <@{user}>: {n}", "ja": "• <@{user}> さん: {n} 件"},
    "chart.title": {"en": "MQLs, SQLs and claim SLA, {first} to {last}",
                    "ja": "MQL数・SQL数・SLA内担当率の推移({first} 〜 {last})"},
    "chart.mqls": {"en": "MQLs", "ja": "MQL数"},
    "chart.sqls": {"en": "SQLs", "ja": "SQL数"},
    "chart.count": {"en": "leads", "ja": "リード数"},
    "chart.claim_sla": {"en": "claimed within SLA (%)", "ja": "SLA内の担当率(%)"},
    "chart.rate_axis": {"en": "% within SLA", "ja": "SLA内の割合(%)"},
    "chart.week_tick": {"en": "W{week:02d}", "ja": "第{week}週"},
    "chart.comment": {"en": "The last 8 weeks up to {period}", "ja": "{period} までの直近8週"},
}
