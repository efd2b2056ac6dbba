"""The handoff card: what a rep sees on an MQL, its buttons and its states."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "card.header": {"en": "New MQL: {company}", "ja": "新しいMQL: {company}"},
    "card.fallback": {
        "en": "New MQL: {company} ({name}), score {score}. Claim by {deadline}.",
        "ja": "新しいMQL: {company}({name})スコア {score}。{deadline} までに担当してください。",
    },
    "card.field.person": {"en": "Person", "ja": "担当者"},
    "card.field.title": {"en": "Title", "ja": "役職"},
    "card.field.email": {"en": "Email", "ja": "メール"},
    "card.field.score": {"en": "Score", "ja": "スコア"},
    "card.field.source": {"en": "Source", "ja": "流入元"},
    "card.attributes": {"en": "What they did", "ja": "最近の行動"},
    "card.claim_by": {"en": ":alarm_clock: Claim by *{deadline}*", "ja": ":alarm_clock: *{deadline}* までに担当してください"},
    "card.button.claim": {"en": "Claim", "ja": "担当する"},
    "card.button.disqualify": {"en": "Not a fit…", "ja": "対象外…"},
    "card.button.sql": {"en": "SQL", "ja": "商談化"},
    "card.button.won": {"en": "Won", "ja": "受注"},
    "card.button.lost": {"en": "Lost…", "ja": "失注…"},
    "card.button.undo": {"en": "Undo outcome", "ja": "結果を取り消す"},
    "card.sql": {"en": ":handshake: SQL since {when}", "ja": ":handshake: {when} に商談化"},
    "card.won": {"en": ":trophy: Won {when} — <@{user}>", "ja": ":trophy: {when} に受注 — <@{user}> さん"},
    "card.lost": {"en": ":x: Lost {when} — <@{user}>: {reason}", "ja": ":x: {when} に失注 — <@{user}> さん: {reason}"},
    "card.quality": {"en": "Lead quality: {rating}", "ja": "リード品質: {rating}"},
    "card.claimed": {
        "en": ":white_check_mark: Claimed by <@{user}> · {duration} after handoff ({sla})",
        "ja": ":white_check_mark: <@{user}> さんが担当 · 引き渡しから{duration}({sla})",
    },
    "card.claimed.fallback": {
        "en": "{company}: claimed by <@{user}>", "ja": "{company}: <@{user}> さんが担当",
    },
    "card.disqualified": {
        "en": ":no_entry_sign: Not a fit — marked by <@{user}>: {reason}",
        "ja": ":no_entry_sign: 対象外 — <@{user}> さんが判断: {reason}",
    },
    "card.disqualified.fallback": {
        "en": "{company}: not a fit", "ja": "{company}: 対象外",
    },
    "card.unknown_company": {"en": "(no company)", "ja": "(会社名なし)"},
    "card.unknown_name": {"en": "(no name)", "ja": "(氏名なし)"},
    "sla.within": {"en": "within SLA", "ja": "SLA内"},
    "sla.missed": {"en": "SLA missed", "ja": "SLA超過"},
    "duration.minutes": {"en": "{m} min", "ja": "{m}分"},
    "duration.hours": {"en": "{h} h {m} min", "ja": "{h}時間{m}分"},
    "datetime.format": {"en": "{wd} {d} {mon} {hh}:{mm}", "ja": "{mon}月{d}日({wd}) {hh}:{mm}"},
    "weekdays": {"en": "Mon Tue Wed Thu Fri Sat Sun", "ja": "月 火 水 木 金 土 日"},
    "months": {"en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
               "ja": "1 2 3 4 5 6 7 8 9 10 11 12"},
}
