"""The monthly retro agenda: the month's numbers, advice and action items."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "retro.title": {"en": "Monthly handoff retro — {period}", "ja": "月次ハンドオフ振り返り — {period}"},
    "retro.targets": {"en": "*1. KPIs against targets*", "ja": "*1. 目標に対する実績*"},
    "retro.targets.none": {"en": "No targets set for this month (`/kpi target mqls 120`).",
                           "ja": "この月の目標は未設定です(`/kpi target mqls 120`)。"},
    "retro.target.line": {"en": "{mark} {metric}: {actual} (target {target})", "ja": "{mark} {metric}: {actual}(目標 {target})"},
    "retro.went_well": {"en": "*2. What went well*", "ja": "*2. うまくいったこと*"},
    "retro.went_badly": {"en": "*3. What did not*", "ja": "*3. うまくいかなかったこと*"},
    "retro.best_source": {"en": "• Best source: {source}, MQL→SQL {rate} over {mqls} MQLs",
                          "ja": "• 最も良い流入元: {source}(MQL {mqls} 件、MQL→SQL {rate})"},
    "retro.worst_source": {"en": "• Weakest source: {source}, MQL→SQL {rate} over {mqls} MQLs",
                           "ja": "• 最も弱い流入元: {source}(MQL {mqls} 件、MQL→SQL {rate})"},
    "retro.sla_misses": {"en": "• <@{user}>: {n} claimed after the deadline", "ja": "• <@{user}> さんの担当SLA超過 {n} 件"},
    "retro.reasons": {"en": "*4. Why leads were lost or not a fit*", "ja": "*4. 失注・対象外の理由*"},
    "retro.bands": {"en": "*5. Do the score bands still predict SQLs?* (MQLs · SQLs · MQL→SQL)",
                    "ja": "*5. スコア帯は今も商談化を予測しているか*(MQL · 商談化 · MQL→SQL)"},
    "retro.change": {"en": "• {metric}: {before} → {now}", "ja": "• {metric}: {before} → {now}"},
    "retro.threshold.raise": {
        "en": "→ The lowest MQL band {band} converts at {rate} ({mqls} MQLs) against {overall} overall: consider raising {setting} from {threshold} to {to}.",
        "ja": "→ 最も低いMQL帯 {band} の商談化率は {rate}(MQL {mqls} 件)で、全体 {overall} の半分未満です。{setting} を {threshold} から {to} に上げることを検討してください。"},
    "retro.threshold.lower": {
        "en": "→ The lowest MQL band {band} converts at {rate} ({mqls} MQLs), as well as the overall {overall}: {setting} could come down from {threshold} to {to} to test more leads.",
        "ja": "→ 最も低いMQL帯 {band} の商談化率 {rate}(MQL {mqls} 件)は全体 {overall} と同等以上です。{setting} を {threshold} から {to} に下げて試す余地があります。"},
    "retro.threshold.keep": {
        "en": "→ Keep {setting} at {threshold}: the lowest band {band} converts at {rate} ({mqls} MQLs) against {overall} overall.",
        "ja": "→ {setting} は {threshold} のままで良さそうです。最も低い帯 {band} の商談化率 {rate}(MQL {mqls} 件)、全体 {overall}。"},
    "retro.last_items": {"en": "*6. Last month's action items — review*", "ja": "*6. 前回のアクションアイテム — 振り返り*"},
    "retro.item": {"en": "• {text} (<@{user}>)", "ja": "• {text}(<@{user}> さん)"},
    "retro.new_items": {"en": "*7. This month's action items* — add them here; the next retro lists them.",
                        "ja": "*7. 今月のアクションアイテム* — ここで追加してください。次回の振り返りで一覧になります。"},
    "retro.add_item": {"en": "Add action item", "ja": "アクションを追加"},
    "retro.modal.title": {"en": "Action item", "ja": "アクションアイテム"},
    "retro.modal.submit": {"en": "Add", "ja": "追加"},
    "retro.modal.label": {"en": "What will we do (from the {period} retro)?", "ja": "何をしますか({period} の振り返りから)"},
    "retro.item_added": {"en": "Added to the action items; the next retro lists it.",
                         "ja": "アクションアイテムに追加しました。次回の振り返りで一覧になります。"},
    "retro.item_required": {"en": "Write the action item.", "ja": "アクションアイテムを入力してください。"},
    "retro.handed_in": {
        "en": "• {team}, second handoff: {n} SQLs handed in · taken within SLA {rate} ({in_sla} of {of}) · median "
              "{median} business min",
        "ja": "• {team}(2 段目の引き継ぎ): 引き継がれた SQL {n} 件 · SLA 内の引き受け {rate}({of} 件中 {in_sla} 件)· "
              "中央値 {median} 営業分"},
}
