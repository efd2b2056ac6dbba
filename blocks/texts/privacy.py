"""Personal data (docs/privacy.md): the `privacy` commands, and what Slack shows of an erased lead."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "cli.privacy.usage": {
        "en": "usage: bot.py privacy export EMAIL | privacy erase EMAIL | --external-id ID [--suppress] [--yes] | "
              "privacy log",
        "ja": "使い方: bot.py privacy export メールアドレス | privacy erase メールアドレス | --external-id ID "
              "[--suppress] [--yes] | privacy log"},
    "cli.privacy.confirm": {"en": "Erase {who}: {n} lead(s) ({ids}), everywhere Handoff put them? [y/N] ",
                            "ja": "{who} を消去しますか(リード {n} 件: {ids})。Handoff が置いたすべての場所から消去します [y/N] "},
    "cli.privacy.not_erased": {"en": "nothing was erased", "ja": "何も消去していません"},
    "cli.privacy.erased": {
        "en": "erased {n} lead(s): {ids}; their Slack messages are being edited and lead.erased sent",
        "ja": "リード {n} 件を消去しました: {ids}。Slack のメッセージを編集し、lead.erased を送信しています"},
    "cli.privacy.suppressed": {
        "en": "the email is suppressed: a webhook for it will store nothing (only its keyed hash is kept)",
        "ja": "このメールアドレスは抑止されました。今後の Webhook は何も保存しません(鍵付きハッシュのみ保持)"},
    "cli.privacy.log_empty": {"en": "no erasures yet", "ja": "消去の記録はまだありません"},
    "cli.privacy.log_line": {"en": "{at}  {how}  {n} lead(s): {ids}{suppressed}",
                             "ja": "{at}  {how}  リード {n} 件: {ids}{suppressed}"},
    "cli.privacy.log_suppressed": {"en": "  (email suppressed)", "ja": "  (メールアドレス抑止)"},
    "cli.privacy.not_an_email": {
        "en": "{value!r} is not an email address: give the person's email, e.g. taro@example.co.jp",
        "ja": "{value!r} はメールアドレスではありません。本人のメールアドレスを指定してください(例: taro@example.co.jp)"},
    "privacy.card.header": {"en": "Lead #{id}", "ja": "リード #{id}"},
    "privacy.card.erased": {
        "en": "This person's data was erased on request; the lead's history is kept without it.",
        "ja": "ご本人の求めにより個人データを消去しました。リードの経過は個人データなしで残しています。"},
    "privacy.card.fallback": {"en": "Lead #{id}: personal data erased", "ja": "リード #{id}: 個人データ消去済み"},
    "privacy.message.erased": {
        "en": "This message was about lead #{id}, whose personal data was erased on request.",
        "ja": "このメッセージはリード #{id} についてのものでした。ご本人の求めにより個人データを消去しました。"},
    "cli.retention.off": {"en": "retention is off (RETENTION_DAYS=0): nothing erased",
                          "ja": "保持期限は無効です(RETENTION_DAYS=0)。何も消去していません"},
    "cli.retention.done": {"en": "retention: {n} lead(s) without activity for {days} days erased",
                           "ja": "保持期限: {days} 日間活動のないリード {n} 件を消去しました"},
}
