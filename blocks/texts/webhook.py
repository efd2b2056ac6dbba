"""What POST /hooks/leads answers: every refusal names the field (docs/http.md)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "api.unauthorized": {"en": "missing or wrong bearer token", "ja": "Bearer トークンがないか、正しくありません"},
    "api.not_json": {"en": "the body is not valid JSON", "ja": "本文が正しい JSON ではありません"},
    "api.too_large": {"en": "the body is over 1 MB", "ja": "本文が 1 MB を超えています"},
    "api.not_configured": {"en": "LEAD_WEBHOOK_TOKEN is not set on the server",
                           "ja": "サーバーに LEAD_WEBHOOK_TOKEN が設定されていません"},
    "api.body_shape": {"en": "expected a lead object or {{\"leads\": [...]}}",
                       "ja": "リードのオブジェクトか {{\"leads\": [...]}} を送ってください"},
    "api.unknown_shape": {"en": "not a body Handoff accepts: send a lead object ({{\"email\": …, \"score\": …}}), "
                                "{{\"leads\": [...]}}, or the body of a HubSpot workflow's webhook action (all "
                                "contact properties with \"vid\", or chosen properties with \"hs_object_id\")",
                          "ja": "Handoff が受け付ける本文ではありません。リードのオブジェクト({{\"email\": …, "
                                "\"score\": …}})、{{\"leads\": [...]}}、または HubSpot ワークフローの Webhook "
                                "アクションの本文(\"vid\" 付きの全コンタクトプロパティ、または \"hs_object_id\" "
                                "付きの選択したプロパティ)を送ってください"},
    "api.unavailable": {"en": "the database is unavailable; nothing was stored, send it again later",
                        "ja": "データベースに接続できません。何も保存されていません。後でもう一度送ってください"},
    "api.internal": {"en": "an unexpected error; nothing was stored", "ja": "予期しないエラーです。何も保存されていません"},
    "api.batch_empty": {"en": "the batch has no leads", "ja": "バッチにリードがありません"},
    "api.batch_too_big": {"en": "a batch holds at most {max} leads", "ja": "バッチは最大 {max} 件までです"},
    "field.required": {"en": "is required", "ja": "必須です"},
    "field.email": {"en": "is not an email address", "ja": "メールアドレスの形式ではありません"},
    "field.score": {"en": "must be an integer from 0 to 100", "ja": "0〜100 の整数にしてください"},
    "field.string": {"en": "must be a string", "ja": "文字列にしてください"},
    "field.too_long": {"en": "must be at most {max} characters", "ja": "{max} 文字以内にしてください"},
    "field.datetime": {"en": "must be an ISO 8601 date and time in the years 1970 to 2100",
                       "ja": "1970〜2100 年の ISO 8601 の日時にしてください"},
    "field.future": {"en": "is in the future", "ja": "未来の日時です"},
    "field.attributes": {"en": "must be an object of at most {max} short strings",
                         "ja": "{max} 個までの短い文字列のオブジェクトにしてください"},
    "field.slack_user": {"en": "must be a Slack user id such as U012AB3CD", "ja": "U012AB3CD のような Slack ユーザーIDにしてください"},
    "field.unknown_column": {"en": "is not a known column", "ja": "不明な列です"},
    "field.team": {"en": "is not a team of ROUTING_FILE (teams: {teams})",
                   "ja": "ROUTING_FILE のチームではありません(チーム: {teams})"},
    "field.team_no_routing": {"en": "names a team, but ROUTING_FILE is not set",
                              "ja": "チームが指定されていますが、ROUTING_FILE が設定されていません"},
    "field.team_needs_mql": {"en": "is only for a row with mql_at (a lead handed off)",
                             "ja": "mql_at のある行(引き渡し済みのリード)にだけ指定できます"},
    "field.order": {"en": "is before mql_at", "ja": "mql_at より前です"},
    "field.email_taken": {"en": "already belongs to another lead (id {id}); one email is one lead",
                          "ja": "すでに別のリード（ID {id}）のものです。1つのメールアドレスは1つのリードです"},
    "field.external_id_conflict": {"en": "differs from the external_id of lead {id}, which has this email",
                                   "ja": "このメールアドレスを持つリード（ID {id}）の external_id と異なります"},
    "field.control_chars": {"en": "must not contain control characters or invalid Unicode",
                            "ja": "制御文字や不正な Unicode を含めないでください"},
}
