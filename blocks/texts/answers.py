"""Private answers to clicks: what was done, and every refusal a person can meet."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "notice.already_claimed": {
        "en": "This lead is already claimed by <@{user}>.",
        "ja": "このリードはすでに <@{user}> さんが担当しています。",
    },
    "notice.already_yours": {"en": "You have already claimed this lead.", "ja": "このリードはすでにあなたが担当しています。"},
    "notice.erased": {"en": "This lead's personal data was erased on request; nothing changed.",
                      "ja": "このリードは本人の求めにより個人データが消去されています。何も変更していません。"},
    "notice.closed": {"en": "This lead is already closed; nothing changed.",
                      "ja": "このリードはすでにクローズされています。変更はありません。"},
    "notice.not_found": {"en": "This lead no longer exists.", "ja": "このリードは見つかりません。"},
    "notice.not_allowed": {
        "en": "Only the lead's owner (<@{user}>) or a sales manager can do this.",
        "ja": "この操作はリードの担当者(<@{user}> さん)か営業マネージャーのみ行えます。",
    },
    "notice.already_recorded": {"en": "That is already recorded; nothing changed.",
                                "ja": "すでに記録されています。変更はありません。"},
    "notice.closed_by": {"en": "<@{user}> already closed this lead ({outcome}); nothing changed.",
                         "ja": "<@{user}> さんがすでにこのリードをクローズしています({outcome})。変更はありません。"},
    "notice.bad_reason": {"en": "Pick one of the listed reasons.", "ja": "一覧から理由を選んでください。"},
    "notice.not_handed": {"en": "This lead was not handed to another team.",
                          "ja": "このリードは他のチームに引き継がれていません。"},
    "notice.already_handed": {"en": "This lead was handed over already.", "ja": "このリードはすでに引き継がれています。"},
    "notice.handed_on": {"en": "This SQL was handed to {team}: it is theirs now, so it cannot be taken back here. "
                                "Ask a manager of {team}.",
                         "ja": "この SQL は {team} に引き継がれ、先方の担当になっているため、ここでは取り消せません。"
                               "{team} のマネージャーに相談してください。"},
    "notice.nothing_to_undo": {"en": "There is no outcome to take back.", "ja": "取り消せる結果はありません。"},
    "notice.recorded": {"en": "Recorded: {outcome}.", "ja": "記録しました: {outcome}"},
    "notice.undone": {"en": "Taken back: {outcome}. The lead is open again.",
                      "ja": "「{outcome}」を取り消しました。リードは再びオープンです。"},
    "notice.quality": {"en": "Thanks: rated {rating}.", "ja": "評価しました: {rating}"},
    "outcome.sql": {"en": "SQL", "ja": "商談化"},
    "outcome.won": {"en": "won", "ja": "受注"},
    "outcome.lost": {"en": "lost", "ja": "失注"},
    "outcome.disqualified": {"en": "not a fit", "ja": "対象外"},
    "quality.good": {"en": "sales-ready", "ja": "営業対応に適していた"},
    "quality.bad": {"en": "not sales-ready", "ja": "営業対応に適していなかった"},
    "notice.not_mql": {"en": "This lead has not been handed off yet.", "ja": "このリードはまだ引き渡されていません。"},
    "notice.not_recorded": {"en": "Handoff could not reach its database, so that was *not recorded*. "
                                  "Please try again in a minute.",
                            "ja": "Handoff がデータベースに接続できなかったため、この操作は*記録されていません*。"
                                  "少し待ってからもう一度お試しください。"},
    "notice.error": {"en": "Something went wrong; nothing changed. Please try again.",
                     "ja": "エラーが発生しました。変更はありません。もう一度お試しください。"},
    "notice.stale": {"en": "That button is not valid anymore; nothing changed.",
                     "ja": "このボタンはもう有効ではありません。変更はありません。"},
    "notice.stale_form": {"en": "This form is not valid anymore; nothing changed. Close it and start again from the message.",
                          "ja": "このフォームはもう有効ではありません。変更はありません。閉じて、メッセージからやり直してください。"},
    "notice.already_done": {"en": "That command was already carried out; nothing changed.",
                            "ja": "このコマンドはすでに実行済みです。変更はありません。"},
}
