"""The outcome modals (lost, not a fit) and the feedback posted to marketing."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "disqualified.title": {"en": "Not a fit", "ja": "対象外"},
    "disqualified.submit": {"en": "Return to marketing", "ja": "マーケに差し戻す"},
    "disqualified.intro": {"en": "*{company}* ({name}) goes back to marketing with your reason.",
                           "ja": "*{company}*({name})を理由とともにマーケティングへ差し戻します。"},
    "lost.title": {"en": "Lost", "ja": "失注"},
    "lost.submit": {"en": "Mark as lost", "ja": "失注にする"},
    "lost.intro": {"en": "*{company}* ({name}) is marked lost; marketing hears why.",
                   "ja": "*{company}*({name})を失注にします。理由はマーケティングに共有されます。"},
    "modal.cancel": {"en": "Cancel", "ja": "キャンセル"},
    "modal.reason": {"en": "Reason", "ja": "理由"},
    "modal.note": {"en": "Note for marketing (optional)", "ja": "マーケへのメモ(任意)"},
    "modal.reason_required": {"en": "Pick a reason.", "ja": "理由を選んでください。"},
    "modal.too_long": {"en": "Keep it to {limit} characters or fewer (this is {length}).",
                       "ja": "{limit} 文字以内にしてください(現在 {length} 文字)。"},
    "reason.budget": {"en": "No budget", "ja": "予算なし"},
    "reason.timing": {"en": "Bad timing", "ja": "時期が合わない"},
    "reason.no_authority": {"en": "No decision authority", "ja": "決裁権なし"},
    "reason.no_need": {"en": "No need", "ja": "ニーズなし"},
    "reason.no_response": {"en": "No response", "ja": "反応なし"},
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
        "en": "Source *{source}* · score *{score}* · marked by {who} on {when}{crm}",
        "ja": "流入元 *{source}* · スコア *{score}* · {who}が {when} に判断{crm}",
    },
    "feedback.lost": {
        "en": ":x: Lost: {company} ({name}) — {reason}",
        "ja": ":x: 失注: {company}({name})— {reason}",
    },
    "feedback.undone": {
        "en": ":leftwards_arrow_with_hook: Correction: {company} ({name}) is no longer {outcome}; <@{user}> took it back.",
        "ja": ":leftwards_arrow_with_hook: 訂正: {company}({name})の「{outcome}」は <@{user}> さんにより取り消されました。",
    },
    "feedback.note": {"en": "Note", "ja": "メモ"},
    "feedback.link": {"en": "<{url}|Open the card>", "ja": "<{url}|カードを開く>"},
    "qualify.title": {"en": "Qualified: hand over", "ja": "商談化して引き継ぐ"},
    "qualify.submit": {"en": "Hand over", "ja": "引き継ぐ"},
    "qualify.intro": {
        "en": "*{company}* ({name}) is marked SQL and handed to *{team}*: a card in their channel, their SLA to take it.",
        "ja": "*{company}*({name})を商談化として *{team}* へ引き継ぎます。先方のチャンネルにカードが届き、先方の SLA "
              "で引き受けられます。"},
    "qualify.note": {"en": "Note for them (what you learned on the call)", "ja": "引き継ぎメモ(ヒアリングした内容など)"},
}
