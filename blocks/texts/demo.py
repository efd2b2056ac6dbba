"""`make demo`: what the offline demo prints as it walks through the product."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "demo.start": {"en": "Handoff demo — offline, against the local Slack stand-in at {url}\n(database: {db})",
                   "ja": "Handoff デモ — オフラインで、ローカルの Slack スタンドイン {url} を相手に動きます\n(データベース: {db})"},
    "demo.integrations": {"en": "Events go to a local receiver that verifies each signature ({events}); HubSpot is a "
                                "local stand-in ({hubspot}) holding the four contacts",
                          "ja": "イベントは署名を検証するローカルの受信先({events})へ、HubSpot はローカルのスタンドイン"
                                "({hubspot})で、4 件のコンタクトを保持しています"},
    "demo.event": {"en": "   ⇢ event {type} for lead {lead} arrived, signature verified ({id})",
                   "ja": "   ⇢ リード {lead} のイベント {type} が届き、署名を検証しました({id})"},
    "demo.step.crm": {"en": "12b. What HubSpot now holds, written by Handoff (nobody typed it twice)",
                      "ja": "12b. Handoff が書き込んだ HubSpot の内容(誰も二度入力していません)"},
    "demo.hubspot_contact": {"en": "   HubSpot contact {email}", "ja": "   HubSpot のコンタクト {email}"},
    "demo.salesforce": {"en": "Salesforce is a local stand-in over HTTPS ({url}) holding the four Leads; "
                              "`salesforce-setup` runs first:",
                        "ja": "Salesforce は HTTPS のローカルスタンドイン({url})で、4 件のリードを保持しています。"
                              "まず `salesforce-setup` を実行します:"},
    "demo.salesforce_setup": {"en": "   created {created} fields, grants and the Handoff_Integration permission set",
                              "ja": "   項目・権限・権限セット Handoff_Integration を {created} 件作成しました"},
    "demo.step.salesforce": {"en": "12c. What Salesforce now holds: each Lead's state, its owner from the claim, "
                                   "and a completed Task per outcome",
                             "ja": "12c. Salesforce の内容: 各リードの状態、対応者から決まる所有者、成果ごとの完了済み ToDo"},
    "demo.salesforce_lead": {"en": "   Salesforce Lead {email} ({id})", "ja": "   Salesforce のリード {email}({id})"},
    "demo.salesforce_task": {"en": "   │ Task {day}: {subject} — {note}", "ja": "   │ ToDo {day}: {subject} — {note}"},
    "demo.done_salesforce": {"en": "Salesforce: {calls} API calls, {tasks} Tasks.",
                             "ja": "Salesforce: API 呼び出し {calls} 回、ToDo {tasks} 件。"},
    "demo.done_out": {"en": "Out: {events} events delivered and verified ({rejected} refused), {writes} HubSpot "
                            "batch writes.",
                      "ja": "外部連携: イベント {events} 件を配信・検証({rejected} 件拒否)、HubSpot への一括書き込み "
                            "{writes} 回。"},
    "demo.step.leads": {"en": "1. Marketing automation sends {n} leads to POST /hooks/leads",
                        "ja": "1. MA ツールが {n} 件のリードを POST /hooks/leads に送ります"},
    "demo.step.answer": {"en": "   {email}: HTTP {status} {body}", "ja": "   {email}: HTTP {status} {body}"},
    "demo.step.update": {"en": "2. The low-score lead is updated to score {score}: it becomes an MQL now",
                         "ja": "2. 低スコアのリードがスコア {score} に更新され、ここで MQL になります"},
    "demo.step.claim": {"en": "3. <@{user}> clicks Claim on the first card",
                        "ja": "3. <@{user}> さんが最初のカードの「担当する」を押します"},
    "demo.step.double": {"en": "4. A moment later <@{user}> clicks Claim on the same card",
                         "ja": "4. 少し遅れて <@{user}> さんも同じカードの「担当する」を押します"},
    "demo.step.disqualify": {"en": "5. <@{user}> marks another lead as not a fit, with a reason and a note",
                             "ja": "5. <@{user}> さんが別のリードを理由とメモ付きで対象外にします"},
    "demo.step.retry": {"en": "6. Slack retries the claim click (X-Slack-Retry-Num: 1): nothing happens twice",
                        "ja": "6. Slack が担当クリックを再送します(X-Slack-Retry-Num: 1)。二重には処理されません"},
    "demo.step.ladder": {"en": "7. Nobody claims the ACME card: the SLA sweep runs through the day (50 %, 80 %, the deadline, then the managers)",
                         "ja": "7. ACME のカードを誰も担当しません。SLA スイープが一日を通して動きます(50%、80%、期限、そしてマネージャーへ)"},
    "demo.step.sweep": {"en": "   — sla-sweep at {at}", "ja": "   — sla-sweep {at}"},
    "demo.step.reassign": {"en": "8. <@{manager}> picks <@{user}> in the escalation: the lead is theirs, the contact clock runs",
                           "ja": "8. <@{manager}> さんがエスカレーションで <@{user}> さんを選びます。担当が決まり、コンタクトの期限が動き始めます"},
    "demo.step.snooze": {"en": "9. <@{user}> snoozes the contact reminder for one business hour (it comes back after the night, once)",
                         "ja": "9. <@{user}> さんがコンタクトのリマインドを営業時間で1時間スヌーズします(夜を越えて翌朝に一度だけ戻ります)"},
    "demo.step.contacted": {"en": "10. <@{user}> logs first contact: the contact ladder stops, the deadline passes quietly",
                            "ja": "10. <@{user}> さんが初回コンタクトを記録します。コンタクトのリマインドは止まり、期限が来ても何も送られません"},
    "demo.step.crm_status": {
        "en": "10b. A rep who works in HubSpot moves {company}'s lead to \"Open deal\" there; HubSpot's workflow tells "
              "Handoff (POST /hooks/status): the card says SQL, marked in the CRM, and its claim reminders stop",
        "ja": "10b. HubSpot で仕事をする担当者が {company} のリードを「商談中」にします。HubSpot のワークフローが Handoff に"
              "伝え(POST /hooks/status)、カードは「CRM で記録」の商談化になり、担当のリマインドは止まります"},
    "demo.step.crm_echo": {
        "en": "10c. Handoff writes the SQL back to HubSpot, whose workflow fires again: only an echo, ignored, so the "
              "two never loop; the sweep at noon sends nothing about it",
        "ja": "10c. Handoff が商談化を HubSpot に書き戻すと、ワークフローがもう一度動きます。自分の書いた内容の"
              "反響なので無視され、ループしません。正午の巡回でもこのリードには何も送られません"},
    "demo.step.outcomes": {"en": "11. <@{user}> records SQL, then Won, on 佐藤工業; asked whether the MQL was sales-ready, says yes",
                           "ja": "11. <@{user}> さんが佐藤工業を商談化、続いて受注として記録し、MQL の品質を「適していた」と評価します"},
    "demo.step.lost": {"en": "12. <@{user}> marks ACME as lost (reason and note in the modal): marketing hears why",
                       "ja": "12. <@{user}> さんが ACME を失注にします(モーダルで理由とメモ)。理由はマーケに届きます"},
    "demo.step.home": {"en": "13. <@{user}> opens Handoff's App Home: their team's unclaimed and overdue leads",
                       "ja": "13. <@{user}> さんが Handoff のホームタブを開きます。チームの未担当・期限切れのリードが見えます"},
    "demo.step.kpi": {"en": "14. <@{user}> types `/kpi week` (the answer is private, with Share to channel) and shares it",
                      "ja": "14. <@{user}> さんが `/kpi week` を入力し(本人にだけ表示、「チャンネルに共有」ボタンつき)、共有します"},
    "demo.private_answer": {"en": "the /kpi answer (only they see it)", "ja": "/kpi の返答(本人にだけ表示)"},
    "demo.step.retro": {"en": "15. The monthly retro for November: posted on the first business day of December",
                        "ja": "15. 11月の月次レトロ: 12月の最初の営業日に投稿されます"},
    "demo.step.digest": {"en": "16. Monday 7 December 09:00: the weekly digest for last week, with its chart (run twice: posted once)",
                         "ja": "16. 12月7日(月)9:00: 前週の週次ダイジェストとグラフ(二度実行しても投稿は一度)"},
    "demo.step.routing": {
        "en": "17. Tuesday 8 December, with a routing file ({path}): inside sales qualify MQLs within the hour, field "
              "sales take the qualified ones within a day. An MQL arrives from a webinar",
        "ja": "17. 12月8日(火)、ルーティングファイル({path})あり: インサイドセールスは MQL を 1 時間以内に、フィールド"
              "セールスは商談化したリードを 1 日以内に引き受けます。ウェビナーから MQL が届きます"},
    "demo.step.inside_claim": {"en": "18. @{user} (inside sales) claims it", "ja": "18. @{user} さん(インサイドセールス)が担当します"},
    "demo.step.qualify": {
        "en": "19. 14:00: @{user} calls, logs the contact and marks it SQL: a form asks for a note, and the lead is handed "
              "to field sales with a card of its own",
        "ja": "19. 14:00: @{user} さんが電話してコンタクトを記録し、商談化にします。メモを書くフォームが開き、リードは専用の"
              "カードでフィールドセールスへ引き継がれます"},
    "demo.step.handed_nag": {"en": "20. {at}: field sales has not taken it yet: the SLA sweep nudges them",
                             "ja": "20. {at}: フィールドセールスがまだ引き受けていないので、SLA スイープが促します"},
    "demo.step.field_claim": {"en": "21. @{user} (field sales) takes it with the same Claim button: the owner moves",
                              "ja": "21. @{user} さん(フィールドセールス)が同じ「担当する」ボタンで引き受け、担当者が移ります"},
    "demo.step.team_kpi": {"en": "22. @{user}, field sales' manager, types /kpi week: their team's report, the second "
                                 "handoff included",
                           "ja": "22. フィールドセールスのマネージャー @{user} さんが /kpi week と入力: 2 段目の引き継ぎを含む"
                                 "チームのレポートです"},
    "demo.chart_saved": {"en": "Chart “{title}” written to {path}", "ja": "グラフ「{title}」を {path} に保存しました"},
    "render.dm": {"en": "DM to @{user}", "ja": "@{user} への DM"},
    "render.thread": {"en": "{where}, in the thread of {ts}", "ja": "{where}、{ts} のスレッド内"},
    "render.update": {"en": "of {channel}/{ts} (the card changes in place)", "ja": "{channel}/{ts}(カードがその場で更新されます)"},
    "render.ephemeral": {"en": "to @{user} in #{channel} (only they see it)", "ja": "#{channel} の @{user} へ(本人にだけ表示)"},
    "render.home": {"en": "the App Home of @{user}", "ja": "@{user} のホームタブ"},
    "render.modal": {"en": "modal “{title}”", "ja": "モーダル「{title}」"},
    "render.upload": {"en": "to #{channel} (an image, uploaded with the message)", "ja": "#{channel} へ(メッセージに添える画像)"},
    "demo.done": {"en": "Done: {posts} messages posted, {updates} cards updated, {ephemerals} private replies, {modals} modals opened, {homes} App Home views published.",
                  "ja": "完了: 投稿 {posts} 件、カード更新 {updates} 件、本人のみへの返信 {ephemerals} 件、モーダル {modals} 件、ホームタブ {homes} 件。"},
}
