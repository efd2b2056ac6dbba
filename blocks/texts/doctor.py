"""`python bot.py doctor`: one line per check, and the fixes the outbox names when Slack refuses a channel
(docs/operating.md#the-doctor)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    # The command itself
    "doctor.settings_invalid": {"en": "settings: {error}", "ja": "設定: {error}"},
    "doctor.serving_anyway": {
        "en": "{n} check(s) failed (✗ above); serving anyway: fix them, then run `python bot.py doctor` again",
        "ja": "{n} 件のチェックが失敗しました(上の ✗)。このまま起動します。直してから `python bot.py doctor` を"
              "もう一度実行してください"},
    "doctor.crashed": {"en": "{name}: could not be checked: {error}", "ja": "{name}: 確認できませんでした: {error}"},
    "doctor.about": {"en": "{what}: {problem}", "ja": "{what}: {problem}"},

    # Slack: the token and its scopes
    "doctor.token.unset": {
        "en": "SLACK_BOT_TOKEN is not set: put the app's Bot User OAuth Token (xoxb-…, on its OAuth & Permissions "
              "page) in the environment or in .env; to try Handoff without Slack, run `make demo`",
        "ja": "SLACK_BOT_TOKEN が設定されていません。アプリの Bot User OAuth Token(xoxb-…、OAuth & Permissions "
              "ページ)を環境変数か .env に設定してください。Slack なしで試すには `make demo` を実行します"},
    "doctor.token.ok": {"en": "Slack token works: @{user} in {team}", "ja": "Slack トークン OK: {team} の @{user}"},
    "doctor.token.refused": {
        "en": "Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-…) again from the "
              "app's OAuth & Permissions page, and reinstall the app if it was revoked",
        "ja": "Slack が SLACK_BOT_TOKEN を拒否しました({error})。アプリの OAuth & Permissions ページから "
              "Bot User OAuth Token(xoxb-…)をコピーし直してください。取り消された場合はアプリを再インストールします"},
    "doctor.slack.unreachable": {
        "en": "cannot reach Slack at {url} ({method}): {error}: check SLACK_API_URL and the network",
        "ja": "{url} の Slack に接続できません({method}): {error}。SLACK_API_URL とネットワークを確認してください"},
    "doctor.slack.down": {
        "en": "Slack answered {what} to {method}: it may be having trouble; run the doctor again in a few minutes",
        "ja": "Slack が {method} に {what} を返しました。障害中の可能性があります。数分後にもう一度実行してください"},
    "doctor.slack.error": {"en": "Slack answered {error} to {method}", "ja": "Slack が {method} に {error} を返しました"},
    "doctor.scopes.ok": {"en": "scopes: the token has all {n} the app uses ({scopes})",
                         "ja": "スコープ: アプリが使う {n} 個すべてがトークンにあります({scopes})"},
    "doctor.scopes.extra": {
        "en": "scopes: the token has all {n} the app uses ({scopes}); granted but unused, so they can be removed: "
              "{extra}",
        "ja": "スコープ: アプリが使う {n} 個すべてがトークンにあります({scopes})。使っていないため外せるもの: {extra}"},
    "doctor.scopes.missing": {
        "en": "scopes: the token lacks {missing}: add them under OAuth & Permissions → Bot Token Scopes "
              "(manifest.yml lists every scope), then reinstall the app",
        "ja": "スコープ: トークンに {missing} がありません。OAuth & Permissions → Bot Token Scopes で追加し"
              "(manifest.yml に全スコープがあります)、アプリを再インストールしてください"},
    "doctor.scopes.no_header": {
        "en": "scopes: Slack's answer did not say which scopes the token has (no x-oauth-scopes header): is "
              "SLACK_API_URL Slack's Web API?",
        "ja": "スコープ: Slack の応答にトークンのスコープがありません(x-oauth-scopes ヘッダーなし)。SLACK_API_URL は "
              "Slack の Web API ですか?"},
    "doctor.scopes.unchecked": {"en": "scopes: not checked, since the token did not work (see above)",
                                "ja": "スコープ: トークンが使えないため確認していません(上記参照)"},
    "doctor.scopes.underived": {"en": "scopes: cannot tell which scopes the code uses: {problems}",
                                "ja": "スコープ: コードが使うスコープを判定できません: {problems}"},

    # Channels
    "doctor.channel.unset": {
        "en": "{setting} is not set: put the channel's id (C…, at the bottom of the channel's details) in the "
              "environment or in .env",
        "ja": "{setting} が設定されていません。チャンネル ID(C…、チャンネル詳細の一番下)を環境変数か .env に"
              "設定してください"},
    "doctor.channel.not_an_id": {
        "en": "{settings} = {value!r} is not a channel id: use the id (C… or G…) shown at the bottom of the "
              "channel's details, not its name",
        "ja": "{settings} = {value!r} はチャンネル ID ではありません。名前ではなく、チャンネル詳細の一番下にある "
              "ID(C… または G…)を使ってください"},
    "doctor.channel.unchecked": {"en": "{settings} {channel}: not checked without SLACK_BOT_TOKEN",
                                 "ja": "{settings} {channel}: SLACK_BOT_TOKEN がないため確認していません"},
    "doctor.channel.ok": {"en": "{settings} #{name} ({channel}): Handoff is a member and can post and upload there",
                          "ja": "{settings} #{name}({channel}): Handoff はメンバーで、投稿もアップロードもできます"},
    "doctor.channel.will_join": {
        "en": "{settings} #{name} ({channel}): a public channel Handoff is not in yet; it will join it when it "
              "first posts there",
        "ja": "{settings} #{name}({channel}): Handoff がまだ参加していないパブリックチャンネルです。最初の投稿時に"
              "自動で参加します"},
    "doctor.channel.cannot_join": {
        "en": "{settings} #{name} ({channel}): Handoff is not in it and cannot join it without the channels:join "
              "scope: type `/invite @Handoff` in #{name}, or add the scope and reinstall the app",
        "ja": "{settings} #{name}({channel}): Handoff は参加しておらず、channels:join スコープがないため参加も"
              "できません。#{name} で `/invite @Handoff` と入力するか、スコープを追加してアプリを再インストールして"
              "ください"},
    "doctor.channel.private_not_in": {
        "en": "{settings} #{name} ({channel}): a private channel Handoff is not in: type `/invite @Handoff` in "
              "#{name}",
        "ja": "{settings} #{name}({channel}): Handoff が参加していないプライベートチャンネルです。#{name} で "
              "`/invite @Handoff` と入力してください"},
    "doctor.channel.not_found": {
        "en": "{settings} {channel}: not found: the id is wrong or the channel was deleted; if it is a private "
              "channel, Handoff is not in it: type `/invite @Handoff` in that channel",
        "ja": "{settings} {channel}: 見つかりません。ID の誤りか、チャンネルが削除されています。プライベート"
              "チャンネルなら Handoff が参加していないので、そのチャンネルで `/invite @Handoff` と入力してください"},
    "doctor.channel.private_not_found": {
        "en": "{settings} {channel}: Slack does not show this private channel to Handoff: type `/invite @Handoff` "
              "in it (if it was deleted, set {settings} to another channel)",
        "ja": "{settings} {channel}: このプライベートチャンネルは Handoff から見えません。そのチャンネルで "
              "`/invite @Handoff` と入力してください(削除されている場合は {settings} を別のチャンネルにします)"},
    "doctor.channel.archived": {
        "en": "{settings} #{name} ({channel}) is archived: unarchive it, or set {settings} to a channel in use",
        "ja": "{settings} #{name}({channel})はアーカイブされています。アーカイブを解除するか、{settings} を"
              "使用中のチャンネルにしてください"},
    "doctor.channel.no_scope": {
        "en": "{settings} #{name} ({channel}): Handoff cannot {what} there without the {scopes} scope: add it "
              "and reinstall the app",
        "ja": "{settings} #{name}({channel}): {scopes} スコープがないため、{what}ができません。スコープを追加して"
              "アプリを再インストールしてください"},
    "doctor.channel.post": {"en": "post", "ja": "投稿"},
    "doctor.channel.upload": {"en": "upload", "ja": "アップロード"},
    "doctor.channel.post_upload": {"en": "post or upload", "ja": "投稿とアップロード"},
    "doctor.channel.no_read": {
        "en": "{settings} {channel}: cannot be checked without the {scopes} scope: add it and reinstall the app",
        "ja": "{settings} {channel}: {scopes} スコープがないため確認できません。スコープを追加してアプリを"
              "再インストールしてください"},

    # People
    "doctor.routing.none": {"en": "ROUTING_FILE: not set: one team, the one the settings above describe",
                            "ja": "ROUTING_FILE: 未設定のため、上の設定どおりの 1 チームです"},
    "doctor.routing.ok": {"en": "ROUTING_FILE {path}: {teams} teams, {rules} rules, no mistakes",
                          "ja": "ROUTING_FILE {path}: チーム {teams}、ルール {rules}、誤りはありません"},
    "doctor.routing.unreadable": {"en": "ROUTING_FILE {path} cannot be read ({error}): fix the path or the file's "
                                        "permissions",
                                  "ja": "ROUTING_FILE {path} を読めません({error})。パスかファイルの権限を直してください"},
    "doctor.routing.mistakes": {
        "en": "ROUTING_FILE {path} has {n} mistake(s) (line(s) {lines}): `python bot.py routing check` names each; "
              "nothing starts until they are fixed",
        "ja": "ROUTING_FILE {path} に誤りが {n} 件あります({lines} 行目)。`python bot.py routing check` で確認して"
              "ください。直すまで起動しません"},
    "doctor.users.none": {"en": "{setting}: nobody is set", "ja": "{setting}: 誰も設定されていません"},
    "doctor.users.ok": {"en": "{setting}: every id is an active person ({n}: {names})",
                        "ja": "{setting}: すべて有効なユーザーです({n} 人: {names})"},
    "doctor.users.unknown": {
        "en": "{setting}: {user} is not a user of this workspace: check the id (their profile → ⋮ → Copy member "
              "ID)",
        "ja": "{setting}: {user} はこのワークスペースのユーザーではありません。ID を確認してください(プロフィール → "
              "⋮ → メンバー ID をコピー)"},
    "doctor.users.deactivated": {"en": "{setting}: {user} (@{name}) is deactivated: remove the id from {setting}",
                                 "ja": "{setting}: {user}(@{name})は無効化されています。{setting} から外してください"},
    "doctor.users.bot": {"en": "{setting}: {user} (@{name}) is a bot, not a person: remove the id from {setting}",
                         "ja": "{setting}: {user}(@{name})は人ではなくボットです。{setting} から外してください"},
    "doctor.users.unchecked": {"en": "{setting}: not checked without SLACK_BOT_TOKEN",
                               "ja": "{setting}: SLACK_BOT_TOKEN がないため確認していません"},

    # The database
    "doctor.db.ok": {"en": "database {url} answers and is at the latest migration ({revision})",
                     "ja": "データベース {url} は応答し、最新のマイグレーション({revision})です"},
    "doctor.db.no_file": {"en": "database {url}: the file does not exist yet: run `python bot.py migrate`",
                          "ja": "データベース {url}: ファイルがまだありません。`python bot.py migrate` を実行してください"},
    "doctor.db.unreachable": {
        "en": "cannot reach the database at {url}: {error}: check DATABASE_URL and that the database is up",
        "ja": "データベース {url} に接続できません: {error}。DATABASE_URL とデータベースが起動しているかを確認して"
              "ください"},
    "doctor.db.empty": {"en": "database {url} has no tables yet: run `python bot.py migrate`",
                        "ja": "データベース {url} にはまだテーブルがありません。`python bot.py migrate` を実行してください"},
    "doctor.db.behind": {
        "en": "database {url} is at migration {current}, the latest is {latest}: run `python bot.py migrate`",
        "ja": "データベース {url} のマイグレーションは {current} で、最新は {latest} です。`python bot.py migrate` "
              "を実行してください"},
    "doctor.db.unknown": {
        "en": "database {url} is at migration {current}, which this version of Handoff does not know (its latest "
              "is {latest}): run the version of Handoff that migrated it",
        "ja": "データベース {url} のマイグレーション {current} は、このバージョンの Handoff が知らないものです"
              "(最新は {latest})。移行したバージョンの Handoff で実行してください"},

    # The webhook token
    "doctor.hook_token.ok": {"en": "LEAD_WEBHOOK_TOKEN is set ({n} characters)",
                             "ja": "LEAD_WEBHOOK_TOKEN は設定済みです({n} 文字)"},
    "doctor.hook_token.unset": {
        "en": "LEAD_WEBHOOK_TOKEN is not set: POST /hooks/leads answers 503 until it is; make one with `{command}`",
        "ja": "LEAD_WEBHOOK_TOKEN が設定されていません。設定するまで POST /hooks/leads は 503 を返します。"
              "`{command}` で作れます"},
    "doctor.hook_token.short": {
        "en": "LEAD_WEBHOOK_TOKEN has {n} characters, fewer than 32: use a long random one, e.g. from `{command}`, "
              "and give it to the tools that send leads",
        "ja": "LEAD_WEBHOOK_TOKEN は {n} 文字で、32 文字未満です。`{command}` などで長いランダムな値を作り、"
              "リードを送るツールにも設定してください"},

    # HubSpot
    "doctor.hubspot.ok": {"en": "HubSpot token works and all {n} handoff_* contact properties exist",
                          "ja": "HubSpot トークン OK。handoff_* のコンタクトプロパティ {n} 個がすべてあります"},
    "doctor.hubspot.missing": {
        "en": "HubSpot: {n} handoff_* contact properties are missing ({names}): run `python bot.py hubspot-setup`",
        "ja": "HubSpot: handoff_* のコンタクトプロパティが {n} 個ありません({names})。`python bot.py hubspot-setup` "
              "を実行してください"},
    "doctor.hubspot.refused": {
        "en": "HubSpot refused HUBSPOT_TOKEN (HTTP {status}): check the private app's access token and its scopes "
              "(crm.objects.contacts.read/write, crm.schemas.contacts.write)",
        "ja": "HubSpot が HUBSPOT_TOKEN を拒否しました(HTTP {status})。非公開アプリのアクセストークンとスコープ"
              "(crm.objects.contacts.read/write、crm.schemas.contacts.write)を確認してください"},
    "doctor.hubspot.error": {"en": "HubSpot answered HTTP {status} reading the contact properties: {detail}",
                             "ja": "HubSpot がコンタクトプロパティの読み取りに HTTP {status} を返しました: {detail}"},
    "doctor.hubspot.unreachable": {
        "en": "cannot reach HubSpot at {url}: {error}: check HUBSPOT_API_URL and the network",
        "ja": "{url} の HubSpot に接続できません: {error}。HUBSPOT_API_URL とネットワークを確認してください"},

    # Salesforce
    "doctor.salesforce.token": {"en": "Salesforce gives a token at {url} (client credentials)",
                                "ja": "{url} の Salesforce がトークンを発行します(クライアントログイン情報フロー)"},
    "doctor.salesforce.refused": {
        "en": "Salesforce refused Handoff at {url}: {detail}: check SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET, "
              "that the External Client App has the client credentials flow on with a run-as user, and that the "
              "user may use the API",
        "ja": "{url} の Salesforce が Handoff を拒否しました: {detail}。SALESFORCE_CLIENT_ID と "
              "SALESFORCE_CLIENT_SECRET、外部クライアントアプリのクライアントログイン情報フローと実行ユーザー、"
              "そのユーザーの API 利用権限を確認してください"},
    "doctor.salesforce.certificate": {
        "en": "Salesforce's certificate at {url} is not trusted: {detail}: Handoff always verifies it; if a proxy "
              "re-signs the traffic, point REQUESTS_CA_BUNDLE at its CA",
        "ja": "{url} の Salesforce の証明書は信頼されていません: {detail}。Handoff は常に証明書を検証します。"
              "プロキシが通信を再署名している場合は、REQUESTS_CA_BUNDLE にその CA を指定してください"},
    "doctor.salesforce.unreachable": {
        "en": "cannot reach Salesforce at {url}: {error}: check SALESFORCE_LOGIN_URL and the network",
        "ja": "{url} の Salesforce に接続できません: {error}。SALESFORCE_LOGIN_URL とネットワークを確認してください"},
    "doctor.salesforce.fields_ok": {"en": "Salesforce: all {n} Handoff fields are visible and writable",
                                    "ja": "Salesforce: Handoff の項目 {n} 個がすべて参照・編集できます"},
    "doctor.salesforce.fields": {
        "en": "Salesforce: {n} Handoff fields are missing or hidden from the integration user ({names}): run "
              "`python bot.py salesforce-setup` (it creates them and grants them through the Handoff_Integration "
              "permission set)",
        "ja": "Salesforce: Handoff の項目が {n} 個、存在しないか連携ユーザーから見えません({names})。"
              "`python bot.py salesforce-setup` を実行してください(項目を作成し、権限セット Handoff_Integration "
              "で付与します)"},
    "doctor.salesforce.status_map_ok": {
        "en": "Salesforce: every SALESFORCE_STATUS_MAP value ({n}) is an active Lead Status",
        "ja": "Salesforce: SALESFORCE_STATUS_MAP の値({n} 個)はすべて有効なリード状況です"},
    "doctor.salesforce.status_map": {
        "en": "Salesforce: SALESFORCE_STATUS_MAP names {values}, not an active Lead Status of this org (active: "
              "{active}): change the map or the picklist",
        "ja": "Salesforce: SALESFORCE_STATUS_MAP の {values} はこの組織の有効なリード状況ではありません(有効: "
              "{active})。マップか選択リストを直してください"},
    "doctor.salesforce.api_ok": {
        "en": "Salesforce API usage {used:,} of {max:,} today ({share}), under the budget of {budget}",
        "ja": "Salesforce の API 使用量は本日 {max:,} 件中 {used:,} 件({share})で、上限 {budget} 未満です"},
    "doctor.salesforce.api_over": {
        "en": "Salesforce API usage {used:,} of {max:,} today ({share}) is at SALESFORCE_API_BUDGET ({budget}): "
              "writes wait until usage falls (look at the other integrations, or raise the budget)",
        "ja": "Salesforce の API 使用量は本日 {max:,} 件中 {used:,} 件({share})で、SALESFORCE_API_BUDGET"
              "({budget})に達しています。使用量が下がるまで書き込みは待ちます(他の連携を確認するか上限を上げてください)"},

    # Event endpoints (named by host only: a URL's path often carries the receiver's secret)
    "doctor.events.ok": {"en": "event endpoint {n} ({host}) answers (HTTP {status})",
                         "ja": "イベント送信先 {n}({host})は応答します(HTTP {status})"},
    "doctor.events.unreachable": {
        "en": "event endpoint {n} ({host}) is unreachable: {why}: check its URL in EVENT_WEBHOOK_URLS and that the "
              "receiver is up",
        "ja": "イベント送信先 {n}({host})に届きません: {why}。EVENT_WEBHOOK_URLS の URL と、受信側が動いているかを"
              "確認してください"},
    "doctor.why.refused": {"en": "the connection was refused or has no route", "ja": "接続が拒否されたか経路がありません"},
    "doctor.why.timeout": {"en": "no answer within {seconds} s", "ja": "{seconds} 秒以内に応答がありません"},
    "doctor.why.dns": {"en": "its host name does not resolve", "ja": "ホスト名を解決できません"},
    "doctor.why.tls": {"en": "its TLS certificate is not trusted", "ja": "TLS 証明書が信頼されていません"},
    "doctor.why.other": {"en": "the connection failed ({kind})", "ja": "接続に失敗しました({kind})"},

    # What the outbox says about a channel Slack refuses (the row's error and the log)
    "fix.private_not_in": {
        "en": "{channel} is a private channel Handoff is not in: type `/invite @Handoff` in that channel",
        "ja": "{channel} は Handoff が参加していないプライベートチャンネルです。そのチャンネルで `/invite @Handoff` と"
              "入力してください"},
    "fix.not_found": {
        "en": "{channel} was deleted or its id is wrong; if it is a private channel, Handoff is not in it: type "
              "`/invite @Handoff` in that channel",
        "ja": "{channel} は削除されたか ID が誤っています。プライベートチャンネルなら Handoff が参加していないので、"
              "そのチャンネルで `/invite @Handoff` と入力してください"},
    "fix.no_join_scope": {
        "en": "Handoff is not in the public channel {channel} and cannot join it without the channels:join scope: "
              "add the scope and reinstall the app, or type `/invite @Handoff` in that channel",
        "ja": "Handoff はパブリックチャンネル {channel} に参加しておらず、channels:join スコープがないため参加も"
              "できません。スコープを追加してアプリを再インストールするか、そのチャンネルで `/invite @Handoff` と"
              "入力してください"},
}
