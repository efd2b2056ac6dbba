"""Salesforce: the Tasks Handoff adds to a record's activity history, and `salesforce-setup` / `salesforce
status` on the command line (docs/salesforce.md)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    # A Task's Subject (Salesforce keeps up to 255 characters).
    "salesforce.task.contacted": {"en": "Handoff: first contact made", "ja": "Handoff: 初回接触"},
    "salesforce.task.sql": {"en": "Handoff: qualified (SQL)", "ja": "Handoff: 商談化 (SQL)"},
    "salesforce.task.won": {"en": "Handoff: won", "ja": "Handoff: 受注"},
    "salesforce.task.lost": {"en": "Handoff: lost", "ja": "Handoff: 失注"},
    "salesforce.task.disqualified": {"en": "Handoff: not a fit", "ja": "Handoff: 対象外"},
    "salesforce.task.with_reason": {"en": "{outcome}: {reason}", "ja": "{outcome}: {reason}"},
    # salesforce-setup
    "cli.salesforce.not_set": {
        "en": "SALESFORCE_LOGIN_URL, SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are not set: put the org's "
              "My Domain URL and the consumer key and secret of an External Client App with the client credentials "
              "flow in the environment or in .env (docs/salesforce.md)",
        "ja": "SALESFORCE_LOGIN_URL、SALESFORCE_CLIENT_ID、SALESFORCE_CLIENT_SECRET が設定されていません。組織の "
              "My Domain の URL と、クライアントログイン情報フローを有効にした外部クライアントアプリのコンシューマー"
              "鍵と秘密を環境変数か .env に設定してください(docs/salesforce.md)"},
    "cli.salesforce.created": {"en": "created {name}", "ja": "{name} を作成しました"},
    "cli.salesforce.exists": {"en": "{name} exists already, left as it is",
                              "ja": "{name} は既にあるため、そのままにしました"},
    "cli.salesforce.refused": {"en": "Salesforce refused {name}: {detail}",
                               "ja": "Salesforce が {name} を拒否しました: {detail}"},
    "cli.salesforce.login_refused": {
        "en": "Salesforce refused the login at {url}: {detail}; check SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET "
              "and that the app's client credentials flow has a run-as user",
        "ja": "{url} で Salesforce がログインを拒否しました: {detail}。SALESFORCE_CLIENT_ID、"
              "SALESFORCE_CLIENT_SECRET と、アプリのクライアントログイン情報フローに実行ユーザーがあることを確認してください"},
    "cli.salesforce.unreachable": {
        "en": "cannot reach Salesforce at {url}: {error}; check SALESFORCE_LOGIN_URL and the network",
        "ja": "{url} の Salesforce に接続できません: {error}。SALESFORCE_LOGIN_URL とネットワークを確認してください"},
    # salesforce status
    "cli.salesforce.usage": {"en": "usage: bot.py salesforce status", "ja": "使い方: bot.py salesforce status"},
    "cli.salesforce.records": {
        "en": "records: {found} found, {not_found} not found, {refused} refused (until their next change)",
        "ja": "レコード: 特定済み {found} 件、見つからない {not_found} 件、拒否 {refused} 件(次の変更まで保留)"},
    "cli.salesforce.pending": {
        "en": "pending: {pending} records and {tasks} Tasks to write; the oldest has waited {oldest}",
        "ja": "書き込み待ち: レコード {pending} 件、ToDo {tasks} 件。最も古いものの待ち時間 {oldest}"},
    "cli.salesforce.none_pending": {"en": "pending: nothing to write", "ja": "書き込み待ち: なし"},
    "cli.salesforce.tasks": {"en": "Tasks: {written} written, {refused} refused, {waiting} waiting for a lead's "
                                   "record to be found",
                             "ja": "ToDo: 書き込み済み {written} 件、拒否 {refused} 件、レコード特定待ち {waiting} 件"},
    "cli.salesforce.certificate": {
        "en": "the certificate of {url} is not trusted: {detail}; Handoff always verifies it: if a proxy re-signs "
              "the traffic, point REQUESTS_CA_BUNDLE at its CA",
        "ja": "{url} の証明書は信頼されていません: {detail}。Handoff は常に証明書を検証します。プロキシが通信を"
              "再署名している場合は、REQUESTS_CA_BUNDLE にその CA を指定してください"},
    "cli.salesforce.last": {"en": "  last {kind}: {error}", "ja": "  直近の{kind}: {error}"},
    "cli.salesforce.kind.not_found": {"en": "not found", "ja": "見つからないもの"},
    "cli.salesforce.kind.refused": {"en": "refusal", "ja": "拒否"},
    "cli.salesforce.kind.retry": {"en": "error being retried", "ja": "再試行中のエラー"},
    "cli.salesforce.kind.task_refused": {"en": "refused Task", "ja": "拒否された ToDo"},
    "cli.salesforce.api": {"en": "API usage: {used:,} of {max:,} requests today ({share:.0%}); Handoff stops at "
                                 "{budget:.0%} (SALESFORCE_API_BUDGET)",
                           "ja": "API 使用量: 本日 {max:,} 件中 {used:,} 件({share:.0%})。Handoff は "
                                 "{budget:.0%} で止まります(SALESFORCE_API_BUDGET)"},
    "cli.salesforce.api_unknown": {"en": "API usage: unknown ({error})", "ja": "API 使用量: 不明({error})"},
    "cli.salesforce.done": {"en": "Salesforce: {pending} records and {tasks} Tasks still to write, {not_found} not "
                                  "found, {refused} refused (until their next change)",
                            "ja": "Salesforce: 書き込み待ち レコード {pending} 件・ToDo {tasks} 件、見つからない "
                                  "{not_found} 件、拒否 {refused} 件(次の変更まで保留)"},
    "cli.salesforce.timeout": {"en": "Salesforce: {pending} records and Tasks still due after {seconds} s; they "
                                     "will be retried",
                               "ja": "Salesforce: {seconds} 秒後も {pending} 件が書き込み待ちです。後で再送します"},
}
