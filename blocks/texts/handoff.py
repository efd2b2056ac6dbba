"""/handoff: out of office and the rotation (docs/slack.md)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "handoff.usage": {
        "en": "Usage:\n• `/handoff ooo until 2026-12-01` — you are out of office through that day (round-robin skips you)\n• `/handoff ooo @rep until 2026-12-01` — managers, for a rep\n• `/handoff ooo off [@rep]` — back in the office\n• `/handoff ooo` — who is away",
        "ja": "使い方:\n• `/handoff ooo until 2026-12-01` — その日まで不在(ラウンドロビンの対象外)\n• `/handoff ooo @担当者 until 2026-12-01` — マネージャーが担当者の不在を設定\n• `/handoff ooo off [@担当者]` — 不在を解除\n• `/handoff ooo` — 不在の一覧",
    },
    "handoff.unknown": {"en": "I did not understand {arg!r}.", "ja": "{arg!r} は認識できませんでした。"},
    "handoff.bad_date": {"en": "{arg!r} is not a date; use YYYY-MM-DD, e.g. 2026-12-01.",
                         "ja": "{arg!r} は日付ではありません。2026-12-01 のように YYYY-MM-DD で指定してください。"},
    "handoff.past_date": {"en": "{day} is already past; give today or a later day.",
                          "ja": "{day} はすでに過ぎています。今日以降の日付を指定してください。"},
    "handoff.ooo_set": {"en": "<@{user}> is out of office through {day}; round-robin skips them until then.",
                        "ja": "<@{user}> さんは {day} まで不在です。それまでラウンドロビンの対象外になります。"},
    "handoff.ooo_cleared": {"en": "<@{user}> is back in the office.", "ja": "<@{user}> さんの不在を解除しました。"},
    "handoff.ooo_none": {"en": "Nobody is out of office.", "ja": "不在の人はいません。"},
    "handoff.ooo_list": {"en": "Out of office:\n{lines}", "ja": "不在:\n{lines}"},
    "handoff.ooo_line": {"en": "• <@{user}> through {day}", "ja": "• <@{user}> さん({day} まで)"},
    "cli.sweep.done": {"en": "sla-sweep at {at}: {looked} due, {sent} messages queued, {errors} errors",
                       "ja": "sla-sweep({at}): 対象 {looked} 件、キュー投入 {sent} 件、エラー {errors} 件"},
    "cli.report.queued": {"en": "{name}: queued", "ja": "{name}: キューに入れました"},
    "cli.report.already": {"en": "{name}: already queued or posted for this period; nothing new",
                           "ja": "{name}: この期間の分はキュー済みまたは投稿済みです。新たな投稿はありません"},
    "cli.migrated": {"en": "database is up to date ({url})", "ja": "データベースは最新です({url})"},
}
