"""Events out and HubSpot on the command line: `bot.py events …`, `hubspot-setup` and what `run-job outbox` says."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "cli.events.usage": {
        "en": "usage: bot.py events list [--failed] [--limit N] | events replay --since ISO8601 [--type T] [--url URL]",
        "ja": "使い方: bot.py events list [--failed] [--limit N] | events replay --since ISO8601 [--type T] [--url URL]"},
    "cli.events.none": {"en": "no event deliveries", "ja": "イベントの配信はありません"},
    "cli.events.none_failed": {"en": "no failed event deliveries", "ja": "失敗したイベント配信はありません"},
    "cli.events.header": {"en": "{id:>6}  {status:<8}  {type:<22}  {lead:>6}  {attempts:>3}  {when:<16}  {url}",
                          "ja": "{id:>6}  {status:<8}  {type:<22}  {lead:>6}  {attempts:>3}  {when:<16}  {url}"},
    "cli.events.row": {"en": "{id:>6}  {status:<8}  {type:<22}  {lead:>6}  {attempts:>3}  {when:<16}  {url}  {error}",
                       "ja": "{id:>6}  {status:<8}  {type:<22}  {lead:>6}  {attempts:>3}  {when:<16}  {url}  {error}"},
    "cli.events.col.id": {"en": "#", "ja": "#"},
    "cli.events.col.status": {"en": "status", "ja": "状態"},
    "cli.events.col.type": {"en": "event", "ja": "イベント"},
    "cli.events.col.lead": {"en": "lead", "ja": "リード"},
    "cli.events.col.attempts": {"en": "try", "ja": "試行"},
    "cli.events.col.when": {"en": "queued", "ja": "登録日時"},
    "cli.events.col.url": {"en": "endpoint", "ja": "送信先"},
    "cli.events.status.pending": {"en": "waiting", "ja": "待機中"},
    "cli.events.status.sent": {"en": "sent", "ja": "送信済み"},
    "cli.events.status.failed": {"en": "failed", "ja": "失敗"},
    "cli.events.shown": {"en": "{shown} deliveries", "ja": "{shown} 件の配信"},
    "cli.events.more": {"en": "{shown} newest of {total} deliveries (--limit N shows more)",
                        "ja": "全 {total} 件のうち新しい {shown} 件(--limit N でさらに表示)"},
    "cli.events.bad_limit": {"en": "--limit {value!r} is not a whole number of at least 1",
                             "ja": "--limit {value!r} は 1 以上の整数ではありません"},
    "cli.events.bad_type": {"en": "--type {value!r} is not an event type; types: {types}",
                            "ja": "--type {value!r} はイベントの種類ではありません。種類: {types}"},
    "cli.events.bad_url": {"en": "--url {value!r} is not one of EVENT_WEBHOOK_URLS: {urls}",
                           "ja": "--url {value!r} は EVENT_WEBHOOK_URLS にありません: {urls}"},
    "cli.events.inactive_url": {"en": "--url {value!r} is not an active endpoint: `bot.py serve` (or `clock`) "
                                      "turns on the endpoints of EVENT_WEBHOOK_URLS when it starts",
                                "ja": "--url {value!r} は有効な送信先ではありません。`bot.py serve`(または `clock`)の"
                                      "起動時に EVENT_WEBHOOK_URLS の送信先が有効になります"},
    "cli.events.no_endpoints": {"en": "EVENT_WEBHOOK_URLS is not set: there is nowhere to send events",
                                "ja": "EVENT_WEBHOOK_URLS が設定されていないため、イベントの送信先がありません"},
    "cli.events.replayed": {"en": "{n} deliveries queued again (the same event ids, so receivers can drop "
                                  "what they already have); they go out while Handoff runs, or now with "
                                  "`bot.py run-job outbox`",
                            "ja": "{n} 件の配信を再登録しました(イベント ID は同じなので、受信側は受信済みのものを"
                                  "捨てられます)。Handoff の稼働中、または `bot.py run-job outbox` で送信されます"},
    "cli.events.done": {"en": "events: {sent} delivered, {failed} failed for good, {pending} waiting for a retry",
                        "ja": "イベント: 配信 {sent} 件、失敗(再送なし){failed} 件、再送待ち {pending} 件"},
    "cli.events.timeout": {"en": "events: {pending} deliveries still due after {seconds} s; they will be retried",
                           "ja": "イベント: {seconds} 秒後も {pending} 件が配信待ちです。後で再送します"},
    "cli.hubspot.done": {"en": "HubSpot: {pending} leads still to write, {not_found} without a contact, {refused} "
                               "refused (until their next change)",
                         "ja": "HubSpot: 書き込み待ち {pending} 件、コンタクトなし {not_found} 件、拒否 {refused} 件"
                               "(次の変更まで保留)"},
    "cli.hubspot.timeout": {"en": "HubSpot: {pending} leads still due after {seconds} s; they will be retried",
                            "ja": "HubSpot: {seconds} 秒後も {pending} 件が書き込み待ちです。後で再送します"},
    "cli.hubspot.no_token": {"en": "HUBSPOT_TOKEN is not set: put a HubSpot private app's access token (scopes "
                                   "crm.objects.contacts.read/write and crm.schemas.contacts.write) in the "
                                   "environment or in .env",
                             "ja": "HUBSPOT_TOKEN が設定されていません。HubSpot の非公開アプリのアクセストークン(スコープ "
                                   "crm.objects.contacts.read/write と crm.schemas.contacts.write)を環境変数か "
                                   ".env に設定してください"},
    "cli.hubspot.created": {"en": "created {name}", "ja": "{name} を作成しました"},
    "cli.hubspot.exists": {"en": "{name} exists already, left as it is", "ja": "{name} は既にあるため、そのままにしました"},
    "cli.hubspot.token_refused": {"en": "HubSpot refused HUBSPOT_TOKEN (HTTP {status}) creating {name}: {detail}; "
                                        "check the token and its scopes",
                                  "ja": "{name} の作成で HubSpot が HUBSPOT_TOKEN を拒否しました(HTTP {status}): "
                                        "{detail}。トークンとスコープを確認してください"},
    "cli.hubspot.refused": {"en": "HubSpot refused {name} (HTTP {status}): {detail}",
                            "ja": "HubSpot が {name} を拒否しました(HTTP {status}): {detail}"},
    "cli.hubspot.unreachable": {"en": "cannot reach HubSpot at {url}: {error}; check HUBSPOT_API_URL and the network",
                                "ja": "{url} の HubSpot に接続できません: {error}。HUBSPOT_API_URL とネットワークを"
                                      "確認してください"},
}
