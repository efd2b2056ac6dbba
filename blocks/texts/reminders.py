"""SLA reminders, escalations and offers (docs/states.md, docs/jobs.md)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
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
    "remind.handed": {
        "en": ":hourglass_flowing_sand: {left} left to take this qualified lead (deadline {deadline}).",
        "ja": ":hourglass_flowing_sand: この商談化リードの引き受け期限まで残り{left}です(期限 {deadline})。",
    },
    "remind.handed_due": {
        "en": ":rotating_light: The deadline to take this qualified lead ({deadline}) has passed and nobody has "
              "taken it. {managers}",
        "ja": ":rotating_light: この商談化リードの引き受け期限({deadline})を過ぎましたが、まだ誰も引き受けていません。"
              "{managers}",
    },
    "remind.handed_escalate": {
        "en": ":rotating_light: *{company}* ({name}), qualified by <@{qualifier}>, has waited {waited} of business "
              "time since it was handed to your team and nobody has taken it. Pick a rep to give it to:",
        "ja": ":rotating_light: *{company}*({name}、<@{qualifier}> さんが商談化)はチームへの引き継ぎから営業時間で"
              "{waited}経過しましたが、引き受け手がいません。担当者を選んでください:",
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
    "remind.quality": {
        "en": ":bar_chart: *{company}* ({name}) is recorded as {outcome}. Was this MQL sales-ready when it reached you?",
        "ja": ":bar_chart: *{company}*({name})は「{outcome}」として記録されました。このMQLは引き渡し時点で営業対応に適していましたか?",
    },
    "remind.button.quality_good": {"en": "Yes, sales-ready", "ja": "はい、適していた"},
    "remind.button.quality_bad": {"en": "No, not ready", "ja": "いいえ、早すぎた"},
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
}
