"""The text catalog: every string a user sees, in English and Japanese.

`t(key, lang, **params)` formats one entry. A test checks that every key has
both languages and the same placeholders in each.
"""
from __future__ import annotations

CATALOG: dict[str, dict[str, str]] = {
    # The handoff card ------------------------------------------------------
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
    # Private answers to clicks ---------------------------------------------
    "notice.already_claimed": {
        "en": "This lead is already claimed by <@{user}>.",
        "ja": "このリードはすでに <@{user}> さんが担当しています。",
    },
    "notice.already_yours": {"en": "You have already claimed this lead.", "ja": "このリードはすでにあなたが担当しています。"},
    "notice.closed": {"en": "This lead is already closed; nothing changed.",
                      "ja": "このリードはすでにクローズされています。変更はありません。"},
    "notice.not_found": {"en": "This lead no longer exists.", "ja": "このリードは見つかりません。"},
    "notice.not_allowed": {
        "en": "Only the lead's owner (<@{user}>) or a sales manager can do this.",
        "ja": "この操作はリードの担当者(<@{user}> さん)か営業マネージャーのみ行えます。",
    },
    "notice.not_mql": {"en": "This lead has not been handed off yet.", "ja": "このリードはまだ引き渡されていません。"},
    "notice.error": {"en": "Something went wrong; nothing changed. Please try again.",
                     "ja": "エラーが発生しました。変更はありません。もう一度お試しください。"},
    # Not-a-fit modal and the feedback to marketing --------------------------
    "disqualify.title": {"en": "Not a fit", "ja": "対象外"},
    "disqualify.submit": {"en": "Return to marketing", "ja": "マーケに差し戻す"},
    "disqualify.cancel": {"en": "Cancel", "ja": "キャンセル"},
    "disqualify.intro": {"en": "*{company}* ({name}) goes back to marketing with your reason.",
                         "ja": "*{company}*({name})を理由とともにマーケティングへ差し戻します。"},
    "disqualify.reason": {"en": "Reason", "ja": "理由"},
    "disqualify.note": {"en": "Note for marketing (optional)", "ja": "マーケへのメモ(任意)"},
    "disqualify.reason_required": {"en": "Pick a reason.", "ja": "理由を選んでください。"},
    "reason.bad_contact_data": {"en": "Bad contact data", "ja": "連絡先の不備"},
    "reason.student_personal": {"en": "Student / personal", "ja": "学生・個人"},
    "reason.competitor": {"en": "Competitor", "ja": "競合他社"},
    "reason.duplicate": {"en": "Duplicate", "ja": "重複"},
    "reason.out_of_segment": {"en": "Outside our target segment", "ja": "ターゲット外"},
    "reason.spam": {"en": "Spam / fake", "ja": "スパム・虚偽"},
    "reason.other": {"en": "Other", "ja": "その他"},
    "feedback.disqualified": {
        "en": ":leftwards_arrow_with_hook: Not a fit: {company} ({name}) — {reason}",
        "ja": ":leftwards_arrow_with_hook: 対象外: {company}({name})— {reason}",
    },
    "feedback.detail": {
        "en": "Source *{source}* · score *{score}* · marked by <@{user}> on {when}",
        "ja": "流入元 *{source}* · スコア *{score}* · <@{user}> さんが {when} に判断",
    },
    "feedback.note": {"en": "Note", "ja": "メモ"},
    "feedback.link": {"en": "<{url}|Open the card>", "ja": "<{url}|カードを開く>"},
    # Webhook answers -------------------------------------------------------
    "api.unauthorized": {"en": "missing or wrong bearer token", "ja": "Bearer トークンがないか、正しくありません"},
    "api.not_json": {"en": "the body is not valid JSON", "ja": "本文が正しい JSON ではありません"},
    "api.too_large": {"en": "the body is over 1 MB", "ja": "本文が 1 MB を超えています"},
    "api.not_configured": {"en": "LEAD_WEBHOOK_TOKEN is not set on the server",
                           "ja": "サーバーに LEAD_WEBHOOK_TOKEN が設定されていません"},
    "api.body_shape": {"en": "expected a lead object or {{\"leads\": [...]}}",
                       "ja": "リードのオブジェクトか {{\"leads\": [...]}} を送ってください"},
    "api.batch_empty": {"en": "the batch has no leads", "ja": "バッチにリードがありません"},
    "api.batch_too_big": {"en": "a batch holds at most {max} leads", "ja": "バッチは最大 {max} 件までです"},
    "field.required": {"en": "is required", "ja": "必須です"},
    "field.email": {"en": "is not an email address", "ja": "メールアドレスの形式ではありません"},
    "field.score": {"en": "must be an integer from 0 to 100", "ja": "0〜100 の整数にしてください"},
    "field.string": {"en": "must be a string", "ja": "文字列にしてください"},
    "field.too_long": {"en": "must be at most {max} characters", "ja": "{max} 文字以内にしてください"},
    "field.datetime": {"en": "must be an ISO 8601 date and time", "ja": "ISO 8601 の日時にしてください"},
    "field.future": {"en": "is in the future", "ja": "未来の日時です"},
    "field.attributes": {"en": "must be an object of at most {max} short strings",
                         "ja": "{max} 個までの短い文字列のオブジェクトにしてください"},
    "field.slack_user": {"en": "must be a Slack user id such as U012AB3CD", "ja": "U012AB3CD のような Slack ユーザーIDにしてください"},
    "field.unknown_column": {"en": "is not a known column", "ja": "不明な列です"},
    "field.order": {"en": "is before mql_at", "ja": "mql_at より前です"},
    # /kpi -----------------------------------------------------------------
    "kpi.usage": {
        "en": "*/kpi* — lead handoff KPIs (sales managers)\n"
              "• `/kpi week [2026-W47]` · `/kpi month [2026-11]` — the report for a period\n"
              "• `/kpi rep [@user]` · `/kpi source` — by rep, by source\n"
              "• `/kpi plan REVENUE DEAL_SIZE [WIN_RATE] [MQL_TO_SQL_RATE]` — MQLs needed for a revenue goal\n"
              "• `/kpi help` — this message",
        "ja": "*/kpi* — リード引き渡しの KPI(営業マネージャー向け)\n"
              "• `/kpi week [2026-W47]` · `/kpi month [2026-11]` — 期間のレポート\n"
              "• `/kpi rep [@user]` · `/kpi source` — 担当者別・流入元別\n"
              "• `/kpi plan 売上目標 平均単価 [受注率] [MQL→SQL率]` — 目標に必要な MQL 数\n"
              "• `/kpi help` — このメッセージ",
    },
    "kpi.refused": {"en": "Sorry, /kpi is for sales managers. Ask a manager to add you to MANAGER_IDS if you need it.",
                    "ja": "申し訳ありません。/kpi は営業マネージャー専用です。必要な場合はマネージャーに MANAGER_IDS への追加を依頼してください。"},
    "kpi.unknown": {"en": "I did not understand `{word}`.", "ja": "`{word}` は認識できませんでした。"},
    "kpi.not_yet": {"en": "`/kpi {what}` reports arrive with the KPI release; this version collects the data they will use.",
                    "ja": "`/kpi {what}` のレポートは KPI 機能のリリースで提供されます。このバージョンではそのためのデータを記録しています。"},
    # The offline demo -----------------------------------------------------
    "demo.start": {"en": "Handoff demo — offline, against the local Slack stand-in at {url}\n(database: {db})",
                   "ja": "Handoff デモ — オフラインで、ローカルの Slack スタンドイン {url} を相手に動きます\n(データベース: {db})"},
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
    "demo.done": {"en": "Done: {posts} messages posted, {updates} cards updated, {ephemerals} private replies, {modals} modal opened.",
                  "ja": "完了: 投稿 {posts} 件、カード更新 {updates} 件、本人のみへの返信 {ephemerals} 件、モーダル {modals} 件。"},
    # Command line ----------------------------------------------------------
    "cli.import.progress": {"en": "checked {n} rows", "ja": "{n} 行を確認しました"},
    "cli.import.invalid": {"en": "{path}: {count} invalid rows; nothing was imported",
                           "ja": "{path}: 不正な行が {count} 行あるため、何も取り込みませんでした"},
    "cli.import.line": {"en": "line {line}: {field} {message}", "ja": "{line} 行目: {field} {message}"},
    "cli.import.done": {"en": "imported {created} new and updated {updated} leads from {path}",
                        "ja": "{path} から新規 {created} 件、更新 {updated} 件を取り込みました"},
    "cli.import.no_file": {"en": "{path}: no such file", "ja": "{path}: ファイルがありません"},
    "cli.import.no_header": {"en": "{path}: the header row must name at least email and score",
                             "ja": "{path}: 見出し行には少なくとも email と score が必要です"},
    "cli.import.encoding": {"en": "{path}: not UTF-8 text", "ja": "{path}: UTF-8 のテキストではありません"},
    "cli.outbox.done": {"en": "outbox: {sent} sent, {failed} failed for good, {pending} still queued",
                        "ja": "outbox: 送信 {sent} 件、失敗(再送なし){failed} 件、待機中 {pending} 件"},
    "cli.outbox.timeout": {"en": "outbox: {pending} messages still queued after {seconds} s; Slack may be down, they will be retried",
                           "ja": "outbox: {seconds} 秒後も {pending} 件が送信待ちです。Slack が停止している可能性があります。後で再送します"},
    "cli.job.unknown": {"en": "unknown job {name!r}; jobs: {jobs}", "ja": "不明なジョブ {name!r} です。ジョブ: {jobs}"},
    "cli.job.not_yet": {"en": "job {name!r} is not part of this release yet; available now: {jobs}",
                        "ja": "ジョブ {name!r} はこのリリースにはまだありません。利用できるジョブ: {jobs}"},
    "cli.bad_instant": {"en": "--at {value!r} is not an ISO 8601 date and time", "ja": "--at {value!r} は ISO 8601 の日時ではありません"},
    "cli.db_unreachable": {"en": "cannot reach the database at {url}: {error} (check DATABASE_URL)",
                           "ja": "データベース {url} に接続できません: {error}(DATABASE_URL を確認してください)"},
    "cli.serving": {"en": "Handoff is serving on port {port} ({mode}); webhook: POST /hooks/leads, health: GET /healthz",
                    "ja": "Handoff がポート {port} で稼働中です({mode})。Webhook: POST /hooks/leads、ヘルス: GET /healthz"},
    # SLA reminders and escalations -----------------------------------------
    "card.offered": {"en": ":inbox_tray: Offered first to <@{user}> until {until}",
                     "ja": ":inbox_tray: {until} まで <@{user}> さんに優先割り当て中"},
    "card.contacted": {"en": ":telephone_receiver: Contact logged {when} ({sla})",
                       "ja": ":telephone_receiver: 初回コンタクト記録 {when}({sla})"},
    "remind.again": {"en": ":repeat: Snoozed reminder: ", "ja": ":repeat: スヌーズしたリマインド: "},
    "remind.claim": {
        "en": ":hourglass_flowing_sand: {left} left to claim this lead (deadline {deadline}).",
        "ja": ":hourglass_flowing_sand: このリードの担当期限まで残り{left}です(期限 {deadline})。",
    },
    "remind.claim_due": {
        "en": ":rotating_light: The claim deadline ({deadline}) has passed and nobody has claimed this lead. {managers}",
        "ja": ":rotating_light: 担当期限({deadline})を過ぎましたが、まだ誰も担当していません。{managers}",
    },
    "remind.claim_escalate": {
        "en": ":rotating_light: *{company}* ({name}, score {score}) has waited {waited} of business time since handoff and nobody has claimed it. Pick a rep to give it to:",
        "ja": ":rotating_light: *{company}*({name}、スコア {score})は引き渡しから営業時間で{waited}経過しましたが、担当者がいません。担当者を選んでください:",
    },
    "remind.contact": {
        "en": ":telephone_receiver: You claimed *{company}* ({name}). {left} left to log first contact (by {deadline}).",
        "ja": ":telephone_receiver: *{company}*({name})を担当中です。初回コンタクトの記録期限まで残り{left}です({deadline} まで)。",
    },
    "remind.contact_due": {
        "en": ":rotating_light: <@{owner}> claimed *{company}* ({name}) but logged no contact by the deadline ({deadline}). Reassign it?",
        "ja": ":rotating_light: <@{owner}> さんが担当する *{company}*({name})は、期限({deadline})までに初回コンタクトが記録されていません。担当を変更しますか?",
    },
    "remind.outcome": {
        "en": ":memo: You contacted *{company}* ({name}) {since} of business time ago and no outcome is recorded yet (SQL, won, lost or not a fit). Record it so the numbers stay honest.",
        "ja": ":memo: *{company}*({name})への初回コンタクトから営業時間で{since}経ちましたが、結果(商談化・受注・失注・対象外)が未記録です。数字を正しく保つために記録してください。",
    },
    "remind.offered": {
        "en": ":inbox_tray: *{company}* ({name}, score {score}) is offered to you first, until {until}. Claim it now, or it goes back to the channel.",
        "ja": ":inbox_tray: *{company}*({name}、スコア {score})があなたに優先で割り当てられました({until} まで)。期限を過ぎるとチャンネル全体に戻ります。",
    },
    "remind.offer_expired": {
        "en": ":arrows_counterclockwise: <@{user}> did not claim this lead in time; it is open to everyone now.",
        "ja": ":arrows_counterclockwise: <@{user}> さんが期限内に担当しなかったため、このリードは誰でも担当できるようになりました。",
    },
    "remind.assigned": {
        "en": ":bust_in_silhouette: <@{by}> gave you *{company}* ({name}). Log first contact by {deadline}.",
        "ja": ":bust_in_silhouette: <@{by}> さんが *{company}*({name})をあなたに割り当てました。{deadline} までに初回コンタクトを記録してください。",
    },
    "remind.button.contacted": {"en": "Log contact", "ja": "コンタクト済み"},
    "remind.button.snooze_hour": {"en": "Snooze 1 h", "ja": "1時間スヌーズ"},
    "remind.button.snooze_tomorrow": {"en": "Until tomorrow", "ja": "明日までスヌーズ"},
    "remind.reassign.placeholder": {"en": "Give it to…", "ja": "担当者を選ぶ…"},
    "notice.contacted": {"en": "First contact logged. Thanks!", "ja": "初回コンタクトを記録しました。"},
    "notice.snoozed": {"en": "Snoozed until {until} ({count} of {limit}).",
                       "ja": "{until} までスヌーズしました({limit} 回中 {count} 回目)。"},
    "notice.snooze_limit": {
        "en": "You have already snoozed this lead {limit} times; the next reminder comes on schedule and managers hear at the deadline.",
        "ja": "このリードはすでに {limit} 回スヌーズされています。次のリマインドは予定どおり届き、期限を過ぎるとマネージャーに通知されます。",
    },
    "notice.nothing_to_snooze": {"en": "There is no reminder to snooze for this lead.",
                                 "ja": "このリードにスヌーズできるリマインドはありません。"},
    "notice.reassigned": {"en": "Done: <@{user}> owns this lead now.", "ja": "<@{user}> さんを担当者にしました。"},
    "notice.managers_only": {"en": "Only sales managers can do this.", "ja": "この操作は営業マネージャーのみ行えます。"},
    "notice.not_a_user": {"en": "Pick a person to give the lead to.", "ja": "割り当てる担当者を選んでください。"},
    "notice.not_claimed": {"en": "Nobody has claimed this lead yet; claim it first.",
                           "ja": "このリードはまだ誰も担当していません。先に担当してください。"},
    "notice.already_contacted": {"en": "First contact was already logged ({at}).",
                                 "ja": "初回コンタクトはすでに記録されています({at})。"},
    "notice.offered_to_other": {
        "en": "This lead is offered first to <@{user}> until {until}; after that anyone can claim it.",
        "ja": "このリードは {until} まで <@{user}> さんに優先割り当て中です。その後は誰でも担当できます。",
    },
    # /handoff -----------------------------------------------------------------
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
    "cli.migrated": {"en": "database is up to date ({url})", "ja": "データベースは最新です({url})"},
}


def t(key: str, lang: str = "en", **params) -> str:
    entry = CATALOG[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**params) if params else text.replace("{{", "{").replace("}}", "}")
