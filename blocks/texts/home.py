"""App Home: a rep's queue and a manager's view."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "home.mine": {"en": "Your open leads ({n})", "ja": "あなたの対応中リード({n}件)"},
    "home.mine.empty": {"en": "Nothing open. New MQLs appear in the handoff channel.",
                        "ja": "対応中のリードはありません。新しいMQLは引き渡しチャンネルに届きます。"},
    "home.unclaimed": {"en": "Team: unclaimed ({n})", "ja": "チーム: 未担当({n}件)"},
    "home.unclaimed.empty": {"en": "Every MQL has an owner.", "ja": "すべてのMQLに担当者がいます。"},
    "home.overdue": {"en": "Team: contact overdue ({n})", "ja": "チーム: コンタクト期限切れ({n}件)"},
    "home.overdue.empty": {"en": "No contact is overdue.", "ja": "期限切れのコンタクトはありません。"},
    "home.more": {"en": "… and {n} more", "ja": "… ほか {n} 件"},
    "home.lead": {"en": "*{company}* ({name}) · score {score} · {source}",
                  "ja": "*{company}*({name})· スコア {score} · {source}"},
    "home.status.unclaimed": {"en": ":alarm_clock: Claim by {deadline}", "ja": ":alarm_clock: {deadline} までに担当"},
    "home.status.unclaimed_overdue": {"en": ":rotating_light: Unclaimed — claim deadline {deadline} passed",
                                      "ja": ":rotating_light: 未担当 — 担当期限 {deadline} 超過"},
    "home.status.contact": {"en": "<@{user}> · log first contact by {deadline}",
                            "ja": "<@{user}> さん · {deadline} までに初回コンタクト"},
    "home.status.contact_overdue": {"en": ":rotating_light: <@{user}> · first contact was due {deadline}",
                                    "ja": ":rotating_light: <@{user}> さん · 初回コンタクト期限 {deadline} 超過"},
    "home.status.outcome": {"en": "<@{user}> · contacted {since}; record the outcome",
                            "ja": "<@{user}> さん · {since} にコンタクト済み。結果を記録してください"},
    "home.status.sql": {"en": "<@{user}> · SQL since {since}", "ja": "<@{user}> さん · {since} から商談化"},
    "home.quality": {"en": "MQL quality by source (last 90 days)", "ja": "流入元別のMQL品質(過去90日)"},
    "home.quality.line": {"en": "• *{source}*: {good} sales-ready, {bad} not, of {rated} rated ({mqls} MQLs)",
                          "ja": "• *{source}*: 適 {good} 件・不適 {bad} 件(評価 {rated} 件 / MQL {mqls} 件)"},
    "home.quality.empty": {"en": "No MQLs in the last 90 days.", "ja": "過去90日のMQLはありません。"},
}
